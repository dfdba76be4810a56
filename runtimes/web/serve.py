"""Serve the browser demo and one bundle on 127.0.0.1 only (Python standard library, no install).

    python3 runtimes/web/serve.py --bundle artifacts/cmudict/bundle [--port 8000]
    then open http://127.0.0.1:8000/runtimes/web/   (the page reads the bundle from /bundle/)

Only the page, the shared driver core, onnxruntime-web's and @cfworker/json-schema's dist folders, the
manifest schema and the bundle are served.
"""
from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path

RUNTIMES = Path(__file__).resolve().parent.parent
NODE_MODULES = RUNTIMES / "node" / "node_modules"
ROUTES = {  # URL prefix -> directory; anything else is 404
    "/runtimes/web/": RUNTIMES / "web",
    "/runtimes/js/": RUNTIMES / "js",
    "/runtimes/node/node_modules/onnxruntime-web/dist/": NODE_MODULES / "onnxruntime-web" / "dist",
    "/runtimes/node/node_modules/@cfworker/json-schema/dist/esm/": NODE_MODULES / "@cfworker" / "json-schema" / "dist" / "esm",
    # the schema the Python package reads, at its path in the repository (the page fetches it relative to itself)
    "/seq2seq_export/manifest.schema.json": RUNTIMES.parent / "seq2seq_export" / "manifest.schema.json",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def __init__(self, *args, routes: dict[str, Path], **kwargs):
        self.routes = routes
        super().__init__(*args, directory=str(RUNTIMES), **kwargs)

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, root in self.routes.items():
            if path == prefix and root.is_file():
                return str(root)
            if prefix.endswith("/") and path.startswith(prefix):
                # the base class resolves '..' and percent escapes inside `directory`
                self.directory = str(root)
                return super().translate_path("/" + path[len(prefix):])
        return str(RUNTIMES / "missing")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # quiet: errors only
        if args and str(args[1]).startswith(("4", "5")):
            super().log_message(format, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="bundle directory served at /bundle/")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args()
    routes = dict(ROUTES)
    if args.bundle is not None:
        if not (args.bundle / "manifest.json").is_file():
            parser.error(f"{args.bundle}: no manifest.json; is it a bundle written by s2s-export?")
        routes["/bundle/"] = args.bundle.resolve()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), functools.partial(Handler, routes=routes))
    print(f"serving http://127.0.0.1:{server.server_port}/runtimes/web/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
