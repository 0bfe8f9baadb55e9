"""Augmentation on the device: random flips, padded crops and noise, per training batch.

Applied to each training batch where it already lives (no torchvision, no per-sample
Python), never at evaluation. The random draws of batch *i* come from a generator seeded
by the run's seed, the epoch's order and *i*, so a run resumed mid-epoch augments exactly
as the uninterrupted one.
"""

from __future__ import annotations

import torch

from trainwell.checks import RANGES
from trainwell.data.order import BatchSource
from trainwell.errors import ConfigError

__all__ = ["Augment", "AugmentedBatches", "flip", "pad_crop"]


def flip(x: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Each image (last dim = width) mirrored left-right with probability ``p``."""
    mask = torch.rand(x.shape[0], generator=g, device=x.device) < p
    return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def pad_crop(x: torch.Tensor, g: torch.Generator, padding: int) -> torch.Tensor:
    """Zero-pad each image by ``padding`` and crop it back at a random offset (a shift).

    (N, H, W) or (N, C, H, W); zero is the mean of standardized inputs. One gather for the
    whole batch.
    """
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=g, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]   # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]   # (N, 1, W)
    b = torch.arange(n, device=x.device)[:, None, None]
    if x.dim() == 3:
        return padded[b, rows, cols]
    return padded[b, :, rows, cols].permute(0, 3, 1, 2)   # advanced dims first: (N, H, W, C)


class Augment:
    """The ``[augment]`` section as a function of (batch, key) → augmented batch.

    Args:
        flip: random left-right flips; crop_padding: random shifts of up to this many pixels;
        noise_std: Gaussian noise added to the inputs; seed: the run's seed.
        input_shape: one sample's shape (images: (H, W) or (C, H, W)).

    Raises:
        ConfigError: flips or crops on inputs that are not images.
    """

    def __init__(self, *, flip: bool = False, crop_padding: int = 0, noise_std: float = 0.0,
                 seed: int = 0, input_shape: tuple[int, ...] = ()):
        if (flip or crop_padding) and len(input_shape) not in (2, 3):
            field = "augment.flip" if flip else "augment.crop_padding"
            raise ConfigError(field, flip if flip else crop_padding,
                              f"image inputs (H, W) or (C, H, W); these samples have shape "
                              f"{tuple(input_shape)} (set data.flatten = false)")
        crop_padding = RANGES["augment.crop_padding"].check("augment.crop_padding", crop_padding)
        noise_std = RANGES["augment.noise_std"].check("augment.noise_std", noise_std)
        self.do_flip, self.padding, self.noise_std = bool(flip), crop_padding, noise_std
        self.seed = int(seed)

    def __call__(self, x: torch.Tensor, key: int) -> torch.Tensor:
        g = torch.Generator(device=x.device)
        g.manual_seed((self.seed * 1_000_003 + key) % (2**63 - 1))
        if self.do_flip:
            x = flip(x, g)
        if self.padding:
            x = pad_crop(x, g, self.padding)
        if self.noise_std:
            x = x + self.noise_std * torch.randn(x.shape, generator=g, device=x.device,
                                                 dtype=x.dtype)
        return x


class AugmentedBatches(BatchSource):
    """A batch source whose training batches go through an :class:`Augment` on the device.

    Same interface as the source it wraps (``len``, ``permutation()``, ``batch(perm, i)``,
    ``epoch(start)``); batch *i*'s key mixes *i* with the epoch's order, so resuming
    mid-epoch redraws the same augmentation.
    """

    def __init__(self, source, augment: Augment):
        self.source, self.augment = source, augment
        self._epochs = 0
        self._epoch_key = 0

    def __len__(self) -> int:
        return len(self.source)

    @property
    def world_size(self) -> int:
        """The source's DDP sharding: its batches are already this worker's shard."""
        return getattr(self.source, "world_size", 1)

    def global_size(self, i: int) -> int:
        return self.source.global_size(i)

    def permutation(self) -> torch.Tensor | None:
        perm = self.source.permutation()
        self._epochs += 1
        if perm is None:
            self._epoch_key = self._epochs
        else:   # host sync: 4 numbers once per epoch (the key survives a resume)
            head = perm[:4].tolist()
            self._epoch_key = sum((v + 1) * 7919 ** k for k, v in enumerate(head))
        return perm

    def batch(self, perm: torch.Tensor | None, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        xb, yb = self.source.batch(perm, i)
        return self.augment(xb, self._epoch_key * 100_003 + i), yb
