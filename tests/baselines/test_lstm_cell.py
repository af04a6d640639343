"""The one-sigmoid LSTM cell shared by the peers and comm learners equals torch's LSTMCell."""

import pytest

torch = pytest.importorskip("torch")

from baselines.lstm_cell import gate_scale, lstm_cell  # noqa: E402


@pytest.mark.parametrize("zero_state", [False, True])
def test_lstm_cell_equals_torch(zero_state):
    g = torch.Generator().manual_seed(0)
    cell = torch.nn.LSTMCell(3, 8).double()
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    h = torch.zeros(5, 8, dtype=torch.float64) if zero_state else torch.randn(5, 8, generator=g)
    c = torch.zeros(5, 8, dtype=torch.float64) if zero_state else torch.randn(5, 8, generator=g)
    h, c = h.double(), c.double()
    expected_h, expected_c = cell(x, (h, c))
    gates = x @ cell.weight_ih.T + h @ cell.weight_hh.T + cell.bias_ih + cell.bias_hh
    new_h, c2 = lstm_cell(gates * gate_scale(8, torch.float64), None if zero_state else 2 * c)
    torch.testing.assert_close(new_h, expected_h)
    torch.testing.assert_close(c2 / 2, expected_c)
