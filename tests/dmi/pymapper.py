#!/usr/bin/python3
"""pymapper.py: the independent DMI mapper of kedge's tests, on Debian's python3-grpcio.

It speaks the protocol of tests/dmi/testmapper.h (commands on stdin, one JSON event per line on
stdout) so the same test body drives it and kedge-testmapper; but its gRPC and protobuf are
grpcio's and python3-protobuf's, with stubs that python3-grpc-tools generated from KubeEdge
v1.15.4's proto/kubeedge/dmi/v1beta1/api.proto (--stubs names their directory). It serves
v1beta1.DeviceMapperService on its own unix socket and calls v1beta1.DeviceManagerService on
kedge's, each call on a fresh channel as mapper-framework's grpcclient does.

"hang" blocks its handlers until "resume" (grpcio reads on its own threads; a handler that never
returns is what a hung mapper looks like from kedge).
"""
import argparse
import json
import os
import socket
import sys
import threading
from concurrent import futures

CALL_TIMEOUT_S = 15  # above kedge's own deadlines: a hang shows as code -1 here

out_lock = threading.Lock()


def emit(ev, **fields):
    line = json.dumps(dict(ev=ev, **fields), separators=(",", ":"))
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def number(v):
    """A FloatValue as the C mapper prints it (%.9g of the float)."""
    v = float("%.9g" % v)
    return int(v) if v == int(v) else v


def any_value(a):
    from google.protobuf import wrappers_pb2

    for cls, conv in ((wrappers_pb2.StringValue, str), (wrappers_pb2.FloatValue, number),
                      (wrappers_pb2.BoolValue, bool)):
        if a.Is(cls.DESCRIPTOR):
            w = cls()
            a.Unpack(w)
            return conv(w.value)
    return "?" + a.type_url


def config_json(cv):
    return {k: any_value(v) for k, v in cv.data.items()}


def device_json(d):
    s = d.spec
    return {
        "name": d.name,
        "model": s.deviceModelReference,
        "protocol": s.protocol.protocolName,
        "config": config_json(s.protocol.configData),
        "desired": {p.name: p.desired.value for p in s.properties if p.HasField("desired")},
        "visitors": {p.name: config_json(p.visitors.configData) for p in s.properties
                     if p.HasField("visitors")},
        "twins": {t.propertyName: t.reported.value for t in d.status.twins},
    }


def model_json(m):
    return {"name": m.name, "properties": [
        {"name": p.name, "type": p.type, "accessMode": p.accessMode} for p in m.spec.properties]}


class Mapper:
    def __init__(self, args, pb, pb_grpc):
        self.args, self.pb, self.pb_grpc = args, pb, pb_grpc
        self.devices, self.models = {}, {}
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.running.set()
        self.die_on = None

    # ---- DeviceMapperService -------------------------------------------------------------

    def enter(self, method):
        self.running.wait()
        if self.die_on == method:
            emit("dying", method=method)
            os._exit(3)

    def keep_device(self, method, request, context, resp):
        self.enter(method)
        d = request.device
        if not d.name:
            context.abort(__import__("grpc").StatusCode.INVALID_ARGUMENT, "device is nil")
        with self.lock:
            self.devices[d.name] = d
        emit(method, device=device_json(d))
        return resp

    def keep_model(self, method, request, context, resp):
        self.enter(method)
        m = request.model
        if not m.name:
            context.abort(__import__("grpc").StatusCode.INVALID_ARGUMENT, "deviceModel is nil")
        with self.lock:
            self.models[m.name] = m
        emit(method, model=model_json(m))
        return resp

    def removed(self, method, table, name, resp):
        self.enter(method)
        with self.lock:
            known = table.pop(name, None) is not None
        emit(method, name=name, known=known)
        return resp

    def servicer(self):
        pb, me = self.pb, self

        class Servicer(self.pb_grpc.DeviceMapperServiceServicer):
            def RegisterDevice(self, request, context):
                return me.keep_device("RegisterDevice", request, context,
                                      pb.RegisterDeviceResponse(deviceName=request.device.name))

            def UpdateDevice(self, request, context):
                return me.keep_device("UpdateDevice", request, context, pb.UpdateDeviceResponse())

            def RemoveDevice(self, request, context):
                return me.removed("RemoveDevice", me.devices, request.deviceName,
                                  pb.RemoveDeviceResponse())

            def CreateDeviceModel(self, request, context):
                return me.keep_model("CreateDeviceModel", request, context,
                                     pb.CreateDeviceModelResponse(
                                         deviceModelName=request.model.name))

            def UpdateDeviceModel(self, request, context):
                return me.keep_model("UpdateDeviceModel", request, context,
                                     pb.UpdateDeviceModelResponse())

            def RemoveDeviceModel(self, request, context):
                return me.removed("RemoveDeviceModel", me.models, request.modelName,
                                  pb.RemoveDeviceModelResponse())

            def GetDevice(self, request, context):
                me.enter("GetDevice")
                with me.lock:
                    d = me.devices.get(request.deviceName)
                emit("GetDevice", name=request.deviceName, known=d is not None)
                if d is None:
                    context.abort(__import__("grpc").StatusCode.NOT_FOUND, "device not found")
                return pb.GetDeviceResponse(device=d)

        return Servicer()

    # ---- calls to kedge ------------------------------------------------------------------

    def call(self, method, request):
        """(code, message, response) of one call on a fresh channel; code -1: no answer."""
        import grpc

        with grpc.insecure_channel("unix:" + self.args.kedge) as ch:
            stub = self.pb_grpc.DeviceManagerServiceStub(ch)
            try:
                resp = getattr(stub, method)(request, timeout=CALL_TIMEOUT_S)
                return 0, "", resp
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return -1, e.details() or "", None
                return e.code().value[0], e.details() or "", None

    def register(self):
        pb = self.pb
        info = pb.MapperInfo(name=self.args.name, version="v1.15.0", api_version="v1beta1",
                             protocol=self.args.protocol,
                             address=self.args.socket.encode(), state="OK")
        code, message, resp = self.call("MapperRegister",
                                        pb.MapperRegisterRequest(withData=True, mapper=info))
        fields = {"code": code, "message": message}
        if code == 0:
            with self.lock:
                self.devices = {d.name: d for d in resp.deviceList}
                self.models = {m.name: m for m in resp.modelList}
            fields["devices"] = [d.name for d in resp.deviceList]
            fields["models"] = [m.name for m in resp.modelList]
            fields["list"] = [device_json(d) for d in resp.deviceList]
        emit("registered", **fields)

    def report(self, dev, twins):
        """twins: (prop, value, observedDesired or None)..., in one ReportDeviceStatus."""
        pb = self.pb
        status = pb.DeviceStatus()
        for prop, value, desired in twins:
            t = status.twins.add(propertyName=prop)
            t.reported.value = value
            if desired is not None:
                t.observedDesired.value = desired
        code, message, _ = self.call("ReportDeviceStatus",
                                     pb.ReportDeviceStatusRequest(deviceName=dev,
                                                                  reportedDevice=status))
        emit("report", device=dev, code=code, message=message)

    def half_report(self):
        """Dies in the middle of its own call: the HTTP/2 preface and half a frame."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.args.kedge)
        data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x0c\x04\x00\x00\x00\x00\x00"
        s.sendall(data)
        emit("dying", method="half-report", bytes=len(data))
        os._exit(3)

    # ---- commands ------------------------------------------------------------------------

    def command(self, line):
        tok = line.split()
        if not tok:
            return True
        cmd, n = tok[0], len(tok)
        if cmd == "register" and n == 1:
            self.register()
        elif cmd == "report" and n in (4, 5):
            self.report(tok[1], [(tok[2], tok[3], tok[4] if n == 5 else None)])
        elif cmd == "reportm" and n >= 3 and all("=" in t for t in tok[2:]):
            self.report(tok[1], [tuple(t.split("=", 1)) + (None,) for t in tok[2:]])
        elif cmd == "oversize" and n == 3:
            self.report(tok[1], [("temperature", "7" * int(tok[2]), None)])
        elif cmd == "half-report" and n == 2:
            self.half_report()
        elif cmd == "devices" and n == 1:
            with self.lock:
                emit("devices", devices=list(self.devices), models=list(self.models))
        elif cmd in ("hang", "resume", "die-on") and n == (2 if cmd == "die-on" else 1):
            if cmd == "hang":
                self.running.clear()
            elif cmd == "resume":
                self.running.set()
            else:
                self.die_on = tok[1]
            emit("ok", command=cmd)
        elif cmd == "quit" and n == 1:
            return False
        else:
            emit("error", message="unknown command")
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="kedge-pymapper")
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--kedge", required=True)
    ap.add_argument("--stubs", required=True, help="where grpc_tools.protoc wrote api_pb2*.py")
    args = ap.parse_args()
    sys.path.insert(0, args.stubs)
    import grpc
    from kubeedge.dmi.v1beta1 import api_pb2, api_pb2_grpc

    m = Mapper(args, api_pb2, api_pb2_grpc)
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    api_pb2_grpc.add_DeviceMapperServiceServicer_to_server(m.servicer(), server)
    if not server.add_insecure_port("unix:" + args.socket):
        print("pymapper: cannot listen on " + args.socket, file=sys.stderr)
        return 1
    server.start()
    emit("ready", socket=args.socket, protocol=args.protocol)
    for line in sys.stdin:
        if not m.command(line):
            break
    m.running.set()
    server.stop(0)
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
