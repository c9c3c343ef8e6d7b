# The post's server. Two changes, both for tests: the bind host comes from
# settings (the post's '[::]' by default), and the bound port is printed once
# the server listens, so BACKEND_PORT=0 picks a free port without a race.
import logging
from concurrent import futures

import grpc

import settings
from api import ApiServer
from api_pb2_grpc import add_ApiServicer_to_server


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    add_ApiServicer_to_server(ApiServer(), server)
    port = server.add_insecure_port(f'{settings.BACKEND_BIND}:{settings.BACKEND_PORT}')
    server.start()
    print(f'listening on {port}', flush=True)
    server.wait_for_termination()


if __name__ == '__main__':
    logging.basicConfig()
    serve()
