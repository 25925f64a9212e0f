"""
A small Hugging Face Hub server on 127.0.0.1, for testing pushes and downloads without a network.

It speaks enough of the Hub protocol for the real `huggingface_hub`, `datasets` and `transformers` clients (with
`HF_HUB_DISABLE_XET=1`) to create repos, upload (regular files and Git LFS), list and download. Repos live in memory;
each commit gets a new sha (the sha1 of the previous sha and the operations) and `main` points to the latest.

Endpoints (`{type}` is `model`, `dataset` or `space`; `{prefix}` is `""`, `datasets/` or `spaces/`):

- `GET /api/whoami-v2`
- `POST /api/repos/create` (409 when the repo exists), `DELETE /api/repos/delete`, `POST /api/validate-yaml`
- `GET /api/{type}s/{ns}/{name}[/revision/{rev}]`: repo info with `sha` and `siblings`
- `GET /api/{type}s/{ns}/{name}/tree/{rev}[/{path}][?recursive=true]`
- `POST /api/{type}s/{ns}/{name}/paths-info/{rev}` (form `paths=...`)
- `POST /api/{type}s/{ns}/{name}/preupload/{rev}`: binary, large, `.parquet`, `.safetensors`, ... files go to LFS
- `POST /{prefix}{ns}/{name}.git/info/lfs/objects/batch`, then `PUT /lfs-upload/{sha256}`
- `POST /api/{type}s/{ns}/{name}/commit/{rev}`: NDJSON `header`, `file`, `lfsFile`, `deletedFile`, `deletedFolder`
- `HEAD`/`GET /{prefix}{ns}/{name}/resolve/{rev}/{path}` with `X-Repo-Commit`, `ETag`, `X-Linked-*`, `Range`

Errors carry `X-Error-Code: RepoNotFound` / `RevisionNotFound` / `EntryNotFound`, as the Hub's do, so that the clients
raise their own exception classes.

```python
with HubServer() as server:  # then run the clients with HF_ENDPOINT=server.url
    server.fail_next(2, status=500, path_contains="/commit/")
    ...
    assert ("POST", "/api/repos/create") in server.requests_log
```
"""

import base64
import datetime
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit


USER = "user"
WHOAMI = {"type": "user", "name": USER, "fullname": "Test User", "orgs": [], "auth": {"type": "access_token"}}
LFS_SUFFIXES = (".parquet", ".safetensors", ".bin", ".arrow", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".zip")
LFS_MIN_SIZE = 10 * 1024
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES).encode()
_API = re.compile(
    r"^/api/(model|dataset|space)s/([^/]+)/([^/]+)(?:/(revision|tree|preupload|commit|paths-info)/(.*))?$"
)
_RESOLVE = re.compile(r"^/(datasets/|spaces/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")
_LFS_BATCH = re.compile(r"^/(datasets/|spaces/)?([^/]+)/([^/]+?)(?:\.git)?/info/lfs/objects/batch$")
_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def reserve_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob, as `git hash-object` computes it."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs(path: str, size: int, sample: bytes) -> bool:
    """The upload mode the server picks: LFS for known binary suffixes, files over 10 KB, and non-UTF-8 samples."""
    if path.endswith(LFS_SUFFIXES) or size > LFS_MIN_SIZE:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass(frozen=True)
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def blob_id(self) -> str:
        """The git blob sha1: of the content, or of the LFS pointer for an LFS file."""
        return git_blob_sha1(lfs_pointer(self.sha256, len(self.content)) if self.lfs else self.content)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id


@dataclass
class Commit:
    sha: str
    message: str
    date: str
    files: dict[str, StoredFile]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def resolve(self, revision: str) -> Commit | None:
        if revision == "main":
            return self.head
        return next((commit for commit in self.commits if commit.sha == revision), None)

    def commit(self, message: str, files: dict[str, StoredFile]) -> Commit:
        """Appends a commit whose tree is `files`; its sha hashes the parent sha, the message and every blob."""
        digest = hashlib.sha1((self.commits[-1].sha if self.commits else f"{self.repo_type}:{self.repo_id}").encode())
        digest.update(message.encode())
        for path in sorted(files):
            digest.update(f"\0{path}\0{files[path].blob_id}".encode())
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.commits.append(Commit(digest.hexdigest(), message, now, dict(files)))
        return self.head


def apply_operations(files: dict[str, StoredFile], operations: list[dict], lfs_store: dict[str, bytes]) -> str:
    """Applies the NDJSON commit `operations` to `files` in place; returns the commit summary."""
    summary = ""
    for operation in operations:
        key, value = operation["key"], operation["value"]
        if key == "header":
            summary = value.get("summary", "")
        elif key == "file":
            files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
        elif key == "lfsFile":
            if value["oid"] not in lfs_store:
                raise KeyError(f"LFS object {value['oid']} of {value['path']} was never uploaded")
            files[value["path"]] = StoredFile(lfs_store[value["oid"]], lfs=True)
        elif key == "deletedFile":
            if value["path"] not in files:
                raise KeyError(f"cannot delete {value['path']}: no such file")
            del files[value["path"]]
        elif key == "deletedFolder":
            folder = value["path"].rstrip("/") + "/"
            for path in [path for path in files if path.startswith(folder)]:
                del files[path]
        else:
            raise ValueError(f"unknown commit operation {key!r}")
    return summary


def tree_entries(files: dict[str, StoredFile], folder: str = "", recursive: bool = False) -> list[dict]:
    """The Hub's tree listing of `folder`: files (with `lfs` for LFS files) and directories, sorted by path."""
    prefix = folder.strip("/") + "/" if folder.strip("/") else ""
    entries: dict[str, dict] = {}
    for path, stored in files.items():
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        for depth in range(1, len(parts)):  # the directories between `folder` and the file
            directory = prefix + "/".join(parts[:depth])
            entries.setdefault(directory, {"type": "directory", "oid": git_blob_sha1(directory.encode()), "size": 0})
            if not recursive:
                break
        if recursive or len(parts) == 1:
            entries[path] = file_entry(stored)
    return [{**entry, "path": path} for path, entry in sorted(entries.items())]


def file_entry(stored: StoredFile) -> dict:
    entry = {"type": "file", "oid": stored.blob_id, "size": len(stored.content)}
    if stored.lfs:
        pointer_size = len(lfs_pointer(stored.sha256, len(stored.content)))
        entry["lfs"] = {"oid": stored.sha256, "size": len(stored.content), "pointerSize": pointer_size}
    return entry


def card_data(files: dict[str, StoredFile]) -> dict | None:
    """The YAML front matter of README.md, as the Hub returns it in `cardData`."""
    readme = files.get("README.md")
    match = re.match(r"^---\n(.*?)\n---", readme.content.decode("utf-8", "replace"), re.DOTALL) if readme else None
    if match is None:
        return None
    import yaml

    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else None


class HubError(Exception):
    """An error answer: `code` goes to `X-Error-Code`, `commit` to `X-Repo-Commit`, `extra` into the JSON body."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.commit, self.extra = status, code, commit, extra


class HubServer:
    """An in-memory Hub on 127.0.0.1; `start(port)` serves it from a daemon thread (see the module docstring)."""

    def __init__(self):
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_store: dict[str, bytes] = {}
        self.requests_log: list[tuple[str, str]] = []
        self._faults: list[tuple[int, str | None]] = []
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("The server is not started.")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self, port: int = 0) -> Self:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self if self._httpd is not None else self.start()  # `with HubServer().start(port)` keeps the port

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def reset(self) -> None:
        """Forgets every repo, LFS object, logged request and pending fault (between tests sharing one server)."""
        with self._lock:
            self.repos.clear()
            self.lfs_store.clear()
            self.requests_log.clear()
            self._faults.clear()

    def fail_next(self, n: int, status: int = 500, path_contains: str | None = None) -> None:
        """The next `n` requests (only those whose path contains `path_contains`, if given) fail with `status`."""
        with self._lock:
            self._faults.extend([(status, path_contains)] * n)

    def take_fault(self, path: str) -> int | None:
        with self._lock:
            for i, (status, path_contains) in enumerate(self._faults):
                if path_contains is None or path_contains in path:
                    del self._faults[i]
                    return status
        return None

    def create_repo(self, repo_type: str, repo_id: str, private: bool = False) -> Repo:
        """Creates a repo with the Hub's first commit (a `.gitattributes` routing binary suffixes to LFS)."""
        with self._lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}")
            repo = self.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, private)
            repo.commit("initial commit", {".gitattributes": StoredFile(GITATTRIBUTES, lfs=False)})
            return repo

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return repo

    def revision(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def log_message(self, format, *args):  # quiet: the tests read `requests_log` instead
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self):
        url = urlsplit(self.path)
        self.body = self._read_body()  # always drained, so that the kept-alive connection stays in sync
        self.query = parse_qs(url.query)
        self.hub.requests_log.append((self.command, url.path))
        try:
            status = self.hub.take_fault(url.path)
            if status is not None:
                raise HubError(status, "Injected failure")
            with self.hub._lock:
                self._route(url.path)
        except HubError as error:
            headers = {"X-Error-Message": str(error)}
            if error.code:
                headers["X-Error-Code"] = error.code
            if error.commit:
                headers["X-Repo-Commit"] = error.commit
            self._send(error.status, {"error": str(error), **error.extra}, headers)
        except (KeyError, ValueError, TypeError) as error:  # a request it does not understand: say so, with a 500
            self._send(500, {"error": f"hub_server: {error!r}"}, {"X-Error-Message": f"hub_server: {error!r}"})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        is_json = not isinstance(payload, bytes)
        self.send_header("Content-Type", "application/json" if is_json else "application/octet-stream")
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self) -> dict:
        return json.loads(self.body or b"{}")

    def _route(self, path: str) -> None:
        hub, method = self.hub, self.command
        if path == "/api/whoami-v2" and method == "GET":
            return self._send(200, WHOAMI)
        if path == "/api/validate-yaml" and method == "POST":
            return self._send(200, {"errors": [], "warnings": []})
        if path in ("/api/repos/create", "/api/repos/delete") and method in ("POST", "DELETE"):
            payload = self._json()
            repo_type = payload.get("type") or "model"
            repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
            if path.endswith("create"):
                url = f"{self._base}/{_PREFIXES[repo_type]}{repo_id}"
                if (repo_type, repo_id) in hub.repos:  # the Hub's 409 carries the url: `exist_ok=True` reads it
                    raise HubError(409, f"You already created this {repo_type} repo", url=url)
                hub.create_repo(repo_type, repo_id, private=payload.get("visibility") == "private")
                return self._send(200, {"url": url, "name": repo_id})
            hub.repo(repo_type, repo_id)
            del hub.repos[(repo_type, repo_id)]
            return self._send(200, {})
        if path.startswith("/lfs-upload/") and method == "PUT":
            oid = path.rsplit("/", 1)[1]
            if hashlib.sha256(self.body).hexdigest() != oid:
                raise HubError(400, f"LFS object does not match its oid {oid}")
            hub.lfs_store[oid] = self.body
            return self._send(200, {})
        if match := _API.match(path):
            repo_type, ns, name, action, rest = match.groups()
            return self._api(hub.repo(repo_type, f"{ns}/{name}"), action, rest or "")
        if (match := _LFS_BATCH.match(path)) and method == "POST":
            hub.repo(_repo_type(match.group(1)), f"{match.group(2)}/{match.group(3)}")
            return self._lfs_batch()
        if (match := _RESOLVE.match(path)) and method in ("GET", "HEAD"):
            prefix, ns, name, revision, file_path = match.groups()
            return self._resolve(hub.repo(_repo_type(prefix), f"{ns}/{name}"), unquote(revision), unquote(file_path))
        raise HubError(404, f"No route for {method} {path}")

    @property
    def _base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _api(self, repo: Repo, action: str | None, rest: str) -> None:
        if action is None or action == "revision":
            return self._repo_info(repo, self.hub.revision(repo, unquote(rest) if action else "main"))
        revision, _, sub_path = rest.partition("/")
        commit = self.hub.revision(repo, unquote(revision))
        handler = {
            ("GET", "tree"): self._tree,
            ("POST", "paths-info"): self._paths_info,
            ("POST", "preupload"): self._preupload,
            ("POST", "commit"): self._commit,
        }.get((self.command, action))
        if handler is None:
            raise HubError(404, f"No route for {self.command} {action}")
        handler(repo, commit, unquote(sub_path).strip("/"))

    def _repo_info(self, repo: Repo, commit: Commit) -> None:
        siblings = []
        for path, stored in sorted(commit.files.items()):
            sibling = {"rfilename": path, "size": len(stored.content), "blobId": stored.blob_id}
            if lfs := file_entry(stored).get("lfs"):
                sibling["lfs"] = {"size": lfs["size"], "sha256": lfs["oid"], "pointerSize": lfs["pointerSize"]}
            siblings.append(sibling)
        created = repo.commits[0]
        info = {"id": repo.repo_id, "_id": created.sha[:24], "author": repo.repo_id.split("/")[0], "sha": commit.sha}
        info |= {"private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": []}
        info |= {"lastModified": commit.date, "createdAt": created.date, "siblings": siblings}
        self._send(200, {**info, "cardData": card_data(commit.files)})

    def _tree(self, repo: Repo, commit: Commit, folder: str) -> None:
        if folder and not any(path.startswith(folder + "/") for path in commit.files):
            raise HubError(404, f"{folder} does not exist at {commit.sha}", "EntryNotFound", commit.sha)
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("true", "1")
        self._send(200, tree_entries(commit.files, folder, recursive))

    def _paths_info(self, repo: Repo, commit: Commit, _: str) -> None:
        entries = []
        for requested in (path.strip("/") for path in parse_qs(self.body.decode()).get("paths", [])):
            if requested in commit.files:
                entries.append({**file_entry(commit.files[requested]), "path": requested})
            elif any(path.startswith(requested + "/") for path in commit.files):
                oid = git_blob_sha1(requested.encode())
                entries.append({"type": "directory", "oid": oid, "size": 0, "path": requested})
        self._send(200, entries)

    def _preupload(self, repo: Repo, commit: Commit, _: str) -> None:
        files = []
        for file in self._json()["files"]:
            mode = "lfs" if is_lfs(file["path"], file["size"], base64.b64decode(file["sample"])) else "regular"
            remote = commit.files.get(file["path"])  # its oid lets the client skip unchanged files
            oid = None if remote is None else (remote.sha256 if remote.lfs else remote.blob_id)
            files.append({"path": file["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._send(200, {"files": files, "commitOid": commit.sha})

    def _commit(self, repo: Repo, commit: Commit, _: str) -> None:
        if commit is not repo.head:
            raise HubError(400, "This server only commits to main")
        operations = [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]
        parent = next((op["value"].get("parentCommit") for op in operations if op["key"] == "header"), None)
        if parent is not None and parent != repo.head.sha:
            raise HubError(412, f"A commit has happened since. {parent} is not the head of main")
        files = dict(repo.head.files)
        try:
            summary = apply_operations(files, operations, self.hub.lfs_store)
        except (KeyError, ValueError) as error:
            raise HubError(422, str(error.args[0])) from error
        new = repo.commit(summary, files)
        url = f"{self._base}/{_PREFIXES[repo.repo_type]}{repo.repo_id}/commit/{new.sha}"
        self._send(200, {"success": True, "commitOid": new.sha, "commitUrl": url, "pullRequestUrl": None})

    def _lfs_batch(self) -> None:
        objects = []
        for obj in self._json().get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_store:
                entry["actions"] = {"upload": {"href": f"{self._base}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _resolve(self, repo: Repo, revision: str, path: str) -> None:
        commit = self.hub.revision(repo, revision)
        stored = commit.files.get(path)
        if stored is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit.sha)
        content, size = stored.content, len(stored.content)
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{stored.etag}"', "Accept-Ranges": "bytes"}
        if stored.lfs:
            headers |= {"X-Linked-Etag": f'"{stored.sha256}"', "X-Linked-Size": size}
        status = 200
        byte_range = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if byte_range and any(byte_range.groups()):
            first, last = byte_range.groups()
            start, end = (int(first or 0), int(last) if last else size - 1) if first else (size - int(last), size - 1)
            start, end = max(start, 0), min(end, size - 1)
            if start > end:
                raise HubError(416, f"Range not satisfiable for a file of {size} bytes")
            status, content = 206, content[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(status, content, headers)


def _repo_type(prefix: str | None) -> str:
    return {"datasets/": "dataset", "spaces/": "space"}.get(prefix or "", "model")
