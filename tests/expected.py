"""Independent expectations for the sample story, computed from make_samples.LAYERS alone.

A deliberately naive model of the OCI layer rules: a flat dict of paths, prefix deletion for
whiteouts and opaque directories. It shares no code with layerscope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from make_samples import Op


@dataclass
class Expected:
    layer_sizes: list[int] = field(default_factory=list)
    layer_files: list[int] = field(default_factory=list)
    layer_deleted: list[int] = field(default_factory=list)
    final: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # path -> (kind, size, layer)

    @property
    def total_size(self) -> int:
        return sum(self.layer_sizes)

    @property
    def squashed_size(self) -> int:
        return sum(size for kind, size, _ in self.final.values() if kind == "file")

    @property
    def files(self) -> int:
        return sum(1 for kind, _, _ in self.final.values() if kind != "dir")


def expect(layers: list[tuple[str, list[Op]]]) -> Expected:
    result = Expected()
    fs = result.final
    for index, (_, ops) in enumerate(layers):
        deleted = 0

        def remove_under(prefix: str, include_self: bool, index: int = index) -> int:
            gone = 0
            for path in [p for p in fs if p.startswith(prefix + "/") or (include_self and p == prefix)]:
                kind, size, layer = fs.pop(path)
                if kind == "file" and layer < index:
                    gone += size
            return gone

        for op in ops:
            if op.kind == "opaque":
                deleted += remove_under(op.path, include_self=False)
        for op in ops:
            if op.kind == "whiteout":
                deleted += remove_under(op.path, include_self=True)
            elif op.kind != "opaque":
                fs[op.path] = (op.kind, op.size, index)
        result.layer_sizes.append(sum(op.size for op in ops if op.kind == "file"))
        result.layer_files.append(sum(1 for op in ops if op.kind in ("file", "symlink", "hardlink")))
        result.layer_deleted.append(deleted)
    return result
