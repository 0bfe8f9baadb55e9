"""Trains and writes a checkpoint after every step until killed (for the SIGKILL test)."""

import sys

import torch
from torch import nn

from trainwell.train import ModelCheckpoint, Trainer

if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = torch.randn(4096, 64), torch.randint(0, 4, (4096,))
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 4))  # ~300k params: each write takes a moment
    t = Trainer(model, optimizer="adam", lr=1e-3,
                callbacks=[ModelCheckpoint(sys.argv[1], every_epochs=0, every_steps=1)])
    print("ready", flush=True)
    t.fit(x, y, epochs=1000, batch_size=32)
