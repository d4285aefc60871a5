"""slaptune: train only on the examples that matter, chosen on-policy, batch by batch (SLAP).

Importing ``slaptune`` pulls in torch and nothing from Hugging Face; the trainer classes live in
``slaptune.integrations.hf`` and ``slaptune.integrations.trl``.

>>> import torch, slaptune
>>> sel = slaptune.select("hard", torch.tensor([0.1, 2.0, 0.5]), None, 1)
>>> sel.indices.tolist()
[1]
"""

from .config import SelectionConfig
from .select import Selection, method_names, select

__version__ = "0.1.0"
__all__ = ["Selection", "SelectionConfig", "__version__", "method_names", "select"]
