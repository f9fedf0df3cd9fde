"""``isc-kit share PINNED [PATH] --remote URL``: server-side copy of a selection into the team's DVC remote."""

from __future__ import annotations

import argparse

from .._format import human_bytes
from ..errors import ConfigError
from ._common import add_source_args, positive_int, print_json, source_from_args

NAME = "share"
HELP = "copy a selection into the team's S3 DVC remote server-side (no download) and write PATH.dvc"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pinned", metavar="PINNED", help="pinned manifest (every entry needs an md5)")
    p.add_argument("path", metavar="PATH", nargs="?", help="folder the .dvc file tracks (default data/<set>)")
    p.add_argument(
        "--remote",
        metavar="URL|NAME",
        help="s3://bucket/path, or the name of a DVC remote (default: the repository's default remote)",
    )
    p.add_argument(
        "--remote-endpoint-url", metavar="URL", help="S3 endpoint of the remote (default: its DVC config)"
    )
    p.add_argument(
        "--jobs", type=positive_int, default=16, metavar="N", help="concurrent copies (default 16)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_source_args(p)


def resolve_remote(repo_root: str, spec: str | None, endpoint_url: str | None) -> tuple[str, str | None]:
    """(URL, endpoint) of ``spec`` (a URL or a remote name) or the default remote of the DVC repo."""
    if spec and "://" in spec:
        return spec, endpoint_url
    from dvc.config import Config

    conf = Config(dvc_dir=f"{repo_root}/.dvc", validate=False)
    name = spec or conf["core"].get("remote")
    remotes = conf.get("remote", {})
    if not name or name not in remotes:
        known = ", ".join(remotes) or "none"
        raise ConfigError(
            f"no DVC remote {name!r} (known: {known}); pass --remote s3://bucket/path or `dvc remote add -d`"
        )
    entry = remotes[name]
    return entry["url"], endpoint_url or entry.get("endpointurl")


def run(args: argparse.Namespace) -> int:
    from ..dvcfiles import find_repo
    from ..pinned import load_pinned
    from ..share import Remote, share

    manifest = load_pinned(args.pinned)
    path = args.path or f"data/{manifest.set_name}"
    repo = find_repo(path)
    url, endpoint = resolve_remote(str(repo.root), args.remote, args.remote_endpoint_url)
    source = source_from_args(args)
    if args.bucket is None:
        source = type(source)(manifest.bucket, source.region, source.endpoint_url, source.anon)
    result = share(manifest, path, Remote.from_url(url, endpoint_url=endpoint), source=source, jobs=args.jobs)
    if args.json:
        print_json(result.to_dict())
    elif result.ok:
        print(
            f"{result.dvcfile}: {result.nfiles:,} files, {'size unknown' if result.bytes is None else human_bytes(result.bytes)}, {result.oid} in {url} "
            f"({result.copied:,} copied server-side, {result.present:,} already there) in {result.seconds:.1f} s"
        )
        print(f"next: git add {result.dvcfile} && git commit; teammates run `dvc pull`")
    else:
        for rel, why in result.failed[:10]:
            print(f"isc-kit share: failed: {rel}: {why}")
        print(f"isc-kit share: {len(result.failed):,} of {result.nfiles:,} failed; no .dvc file was written")
    return 0 if result.ok else 1
