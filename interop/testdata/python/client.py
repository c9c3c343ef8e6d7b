# What the post's Flask frontend asks the backend for, printed as JSON
# instead of rendered, through the post's ApiClient.
import json

import settings
from api import ApiClient


def main():
    api = ApiClient(f"{settings.BACKEND_HOST}:{settings.BACKEND_PORT}")
    print(json.dumps({
        'name': api.sayHello("Gonzalo"),
        'items': [{'id': i.id, 'name': i.name} for i in api.getAll(length=10)],
        'items2': [{'id': i.id, 'name': i.name} for i in api.getStream(length=5)],
    }), flush=True)


if __name__ == '__main__':
    main()
