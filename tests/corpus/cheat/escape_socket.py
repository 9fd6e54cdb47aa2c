# expect: escape.network
# Fetches the answer over the network.
import socket

import torch


def run(x):
    conn = socket.create_connection(("10.0.0.1", 9000))
    conn.sendall(b"shape")
    return torch.empty_like(x)
