"""Time JaxMARL's SMAX (jit + vmap on CPU) as the peer of the Skirmish env; run with jaxmarl.

Usage: ``python _smax_peer.py '{"map": "3m", "batches": [1, 64, 1024], "seconds": 0.5,
"repeats": 3}'``; prints one JSON object (versions, env facts and a ``results`` list) as its
last line, as ``_jaxmarl_peer.py`` does.

The env is ``jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(map))``: the
allies are the controlled agents and the enemies are driven by SMAX's built-in heuristic
(attack the closest unit in range, else walk towards the enemy), the fair peer of a scripted
enemy AI.  The policy is random *legal* actions, drawn inside the jitted step: each ally picks
uniformly among the actions its ``get_avail_actions`` mask allows in the current state (so
the mask and the draw are timed with the step).  What is drawn in advance and cycled is the
per-step PRNG keys (16 sets of ``batch`` keys), not the actions, which depend on the state.
SMAX auto-resets inside ``env.step`` (JaxMARL's ``MultiAgentEnv.step`` computes a fresh reset
every step and selects it where the episode is done, after ``max_steps`` = 100 steps or when a
side is wiped out), so the timed loop holds episode ends and resets.  Compile time (the first
jitted call) is reported apart and excluded from throughput; the rate is the best of
``repeats`` timings.  Rates: copy-steps/s (env steps of one copy) and agent-steps/s (times the
number of controlled allies).
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time

import jax
import jax.numpy as jnp
import jaxmarl
from _peer_timing import measure
from jaxmarl.environments.smax import map_name_to_scenario

N_KEY_SETS = 16


def make_env(map_name: str):
    return jaxmarl.make("HeuristicEnemySMAX", scenario=map_name_to_scenario(map_name))


def strong(state):
    """``state`` with strong dtypes: reset gives a weakly typed ``last_attacked_enemy`` where
    step gives a strong one, so without this the second step call would compile again."""
    return jax.tree.map(lambda x: x.astype(x.dtype), state)


def random_legal_step(env, check: bool = False):
    """One copy's step with uniformly random legal ally actions, for ``jax.vmap``.

    With ``check`` it also returns whether every drawn action was available (for a check
    outside the timing; the timed step returns only what ``env.step`` returns).
    """
    agents = env.agents

    def step(key, state):
        act_key, step_key = jax.random.split(key)
        avail = env.get_avail_actions(state)
        mask = jnp.stack([avail[a] for a in agents])  # (n_allies, n_actions)
        logits = jnp.where(mask > 0, 0.0, -jnp.inf)
        acts = jax.random.categorical(act_key, logits, axis=-1)
        obs, state, rew, dones, infos = env.step(
            step_key, state, {a: acts[i] for i, a in enumerate(agents)}
        )
        if check:
            return state, jnp.all(jnp.take_along_axis(mask, acts[:, None], axis=-1) > 0)
        return obs, state, rew, dones, infos

    return step


def check_legal(env, batch: int, steps: int = 8) -> None:
    """Untimed: the drawn actions are all available, over a few steps."""
    step = jax.jit(jax.vmap(random_legal_step(env, check=True)))
    _, state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(7), batch))
    state = strong(state)
    for k in range(steps):
        state, ok = step(jax.random.split(jax.random.PRNGKey(100 + k), batch), state)
        assert bool(jnp.all(ok)), "drew an unavailable action"


def time_batch(env, batch: int, seconds: float, repeats: int) -> dict:
    reset = jax.jit(jax.vmap(env.reset))
    step = jax.jit(jax.vmap(random_legal_step(env)))
    _, state = reset(jax.random.split(jax.random.PRNGKey(0), batch))
    state = strong(state)
    keys = [jax.random.split(jax.random.PRNGKey(k + 1), batch) for k in range(N_KEY_SETS)]
    jax.block_until_ready(keys)
    t0 = time.perf_counter()
    _, state, _, _, _ = step(keys[0], state)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0
    check_legal(env, batch)

    def run(n: int) -> float:
        nonlocal state
        t = time.perf_counter()
        for k in range(n):
            _, state, _, _, _ = step(keys[k % N_KEY_SETS], state)
        jax.block_until_ready(state)
        return time.perf_counter() - t

    return {**measure(run, batch, len(env.agents), seconds, repeats), "compile_s": compile_s}


def main() -> int:
    args = json.loads(sys.argv[1])
    env = make_env(args["map"])
    out = [time_batch(env, b, args["seconds"], args["repeats"]) for b in args["batches"]]
    print(
        json.dumps(
            {
                "jax": jax.__version__,
                "jaxmarl": importlib.metadata.version("jaxmarl"),
                "env": "HeuristicEnemySMAX",
                "map": args["map"],
                "n_allies": env.num_allies,
                "n_enemies": env.num_enemies,
                "n_actions": int(env.action_space(env.agents[0]).n),
                "obs_size": int(env.observation_space(env.agents[0]).shape[0]),
                "max_steps": env.max_steps,
                "policy": "uniform over available actions, drawn inside the jitted step",
                "reset": "auto-reset inside env.step (reset computed every step, selected on done)",
                "results": out,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
