"""The committed generated code matches proto/: run `make proto` after changing a .proto file."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]


def _without_json_names(message: descriptor_pb2.DescriptorProto) -> None:
    """protoc fills json_name in descriptor sets; the generated Python modules leave it out."""
    for field in message.field:
        field.ClearField("json_name")
    for nested in message.nested_type:
        _without_json_names(nested)


def test_generated_modules_carry_the_current_descriptors(tmp_path: Path) -> None:
    """protoc's view of every file in proto/ equals the descriptor compiled into its module."""
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    gen_proto = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_proto)
    gen_proto.descriptor_set(tmp_path / "set.pb")
    current = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "set.pb").read_bytes())
    assert current.file, "no .proto files found"
    for source in current.file:
        for message in source.message_type:
            _without_json_names(message)
        module = importlib.import_module(
            "allocation_engine.proto."
            + source.name.removesuffix(".proto").replace("/", ".")
            + "_pb2"
        )
        committed = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        assert source == committed, f"{source.name} changed: run `make proto`"
