#!/usr/bin/python3
"""grpc/grpc.c against a real gRPC client: Python grpcio (Debian's python3-grpcio) calls
grpc_interop_server (grpc_fd.h) over a unix socket with stubs generated from KubeEdge's DMI
proto. Exit 77 (ctest: skipped) with the reason when grpcio or grpc_tools is missing.

usage: grpc_interop.py SERVER_BINARY PROTO_DIR
"""
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:
    print(f"SKIP: /usr/bin/python3 lacks grpc ({e}); apt-get install python3-grpcio python3-grpc-tools")
    sys.exit(77)

MIB = 1024 * 1024


def main():
    server_bin, proto_dir = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="kedge-grpc-interop-")
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={work}",
                      f"--grpc_python_out={work}", "kubeedge/dmi/v1beta1/api.proto"])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, work)
    from kubeedge.dmi.v1beta1 import api_pb2 as pb, api_pb2_grpc as pbg

    sock = os.path.join(work, "dmi.sock")
    srv = subprocess.Popen([server_bin, sock], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert srv.stdout.readline().strip() == b"ready"
        run(pb, pbg, sock)
    finally:
        srv.stdin.close()
        status = srv.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    assert status == 0, "server exit status"
    print("ok: grpcio", grpc.__version__, "interoperates")


def register(stub, name, addr, timeout=20):
    req = pb_mod.MapperRegisterRequest(withData=True, mapper=pb_mod.MapperInfo(
        name=name, protocol="modbus", address=addr))
    return stub.MapperRegister(req, timeout=timeout)


def expect_error(fn, code):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, (e.code(), e.details())
        return e.details()
    raise AssertionError(f"no error, wanted {code}")


def run(pb, pbg, sock):
    global pb_mod
    pb_mod = pb
    # the same :authority a Go mapper dialling a bare path sends (not a valid host name)
    for opts in ([], [("grpc.default_authority", "etc/kubeedge/dmi.sock")]):
        with grpc.insecure_channel(f"unix:{sock}", options=opts) as ch:
            stub = pbg.DeviceManagerServiceStub(ch)
            r = register(stub, "thermo", b"/run/thermo.sock")
            assert r.modelList[0].name == "thermo" and r.deviceList[0].name == "/run/thermo.sock"
    with grpc.insecure_channel(f"unix:{sock}") as ch:
        stub = pbg.DeviceManagerServiceStub(ch)
        # an error status with a message that needs percent-encoding
        d = expect_error(lambda: register(stub, "err:no device \"x\" 100% \u00fc", b""),
                         grpc.StatusCode.NOT_FOUND)
        assert d == "no device \"x\" 100% \u00fc", d
        # an empty answer
        stub.ReportDeviceStatus(pb.ReportDeviceStatusRequest(deviceName="x"), timeout=10)
        # unknown method
        nope = ch.unary_unary("/v1beta1.DeviceManagerService/Nope",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=pb.MapperRegisterResponse.FromString)
        expect_error(lambda: nope(pb.MapperRegisterRequest(), timeout=10),
                     grpc.StatusCode.UNIMPLEMENTED)
        # near 4 MiB both ways (grpcio's own receive limit is 4 MiB too)
        big = b"a" * (4 * MIB - 64)
        r = register(stub, "big", big)
        assert r.deviceList[0].name == big.decode()
        # oversize: answered RESOURCE_EXHAUSTED, and the channel stays usable
        expect_error(lambda: register(stub, "huge", b"a" * (4 * MIB + 10)),
                     grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert register(stub, "after", b"x").modelList[0].name == "after"
        # many calls in flight at once
        futs = [stub.MapperRegister.future(pb.MapperRegisterRequest(mapper=pb.MapperInfo(
            name=f"m{i}", address=b"y" * (i * 997))), timeout=30) for i in range(64)]
        for i, f in enumerate(futs):
            r = f.result()
            assert r.modelList[0].name == f"m{i}" and len(r.deviceList[0].name) == i * 997


if __name__ == "__main__":
    main()
