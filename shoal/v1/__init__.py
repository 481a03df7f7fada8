"""GENERATED protobuf and gRPC code for the shoal.v1 API. Never edit: run scripts/gen_proto.py."""
