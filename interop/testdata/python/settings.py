# The post does not show its settings module; its docker-compose sets
# BACKEND_HOST for the frontend and relies on the default port.
import os

BACKEND_HOST = os.getenv('BACKEND_HOST', 'localhost')
BACKEND_PORT = int(os.getenv('BACKEND_PORT', '50051'))
# Not in the post, which always binds '[::]': tests bind loopback only.
BACKEND_BIND = os.getenv('BACKEND_BIND', '[::]')
