"""``baselines._torch``: optimisers that build and step without importing ``torch._dynamo``,
with the same updates as torch's own wrappers.

One fresh interpreter: the test process may have imported ``torch._dynamo`` already
(after which the patched wrappers defer to torch's own, by design).
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import torch
import baselines._torch


def train():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opts = [
        torch.optim.RMSprop(net[0].parameters(), 1e-2, foreach=True),
        torch.optim.Adam(net[2].parameters(), 1e-2, foreach=True),
        torch.optim.SGD(net.parameters(), 1e-3, momentum=0.9),
    ]
    for _ in range(5):
        for opt in opts:
            opt.zero_grad()
        net(torch.randn(16, 4)).square().mean().backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5, foreach=True)
        for opt in opts:
            opt.step()
    for opt in opts:
        opt.load_state_dict(opt.state_dict())
    return [p.detach().flatten().tolist() for p in net.parameters()]


ours = train()
loaded = "torch._dynamo" in sys.modules
import torch._dynamo  # noqa: E402  from here on, torch's own wrappers run
print(json.dumps({"loaded": loaded, "same": train() == ours}))
"""


def test_optimisers_skip_torch_dynamo_and_update_exactly_as_torch():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result == {"loaded": False, "same": True}


def test_patch_is_idempotent():
    import baselines._torch as bt

    assert bt.eager_optimizers() == 0
