"""Capacity: the admission queue and the GPU agent registry with placement."""
