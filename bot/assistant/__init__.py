"""The assistant in the room: the private catch-up and the drafted post-mortem."""
