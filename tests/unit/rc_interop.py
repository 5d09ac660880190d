#!/usr/bin/python3
"""cloudbridge/stream's remote command codec against real clients: kubectl (client-go's
WebSocket v5 executor, and SPDY/3.1 with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false) and
python3-websocket (v4.channel.k8s.io, base64.channel.k8s.io), through rc_interop_server, which
stands in for kube-apiserver + kubelet. Exit 77 (ctest: skipped) when kubectl is missing.

usage: rc_interop.py SERVER_BINARY
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

KUBECTL = shutil.which("kubectl")


def kubectl(env, args, stdin=b"", timeout=60):
    p = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, env=env,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def exec_cases(env, mode, log):
    # a command's output and exit code
    rc, out, err = kubectl(env, ["exec", "p", "--", "echo", "hello", "world"])
    assert (rc, out) == (0, b"hello world\n"), (mode, rc, out, err)
    rc, out, err = kubectl(env, ["exec", "p", "--", "exit", "3"])
    assert rc == 3 and "command terminated with exit code 3" in err, (mode, rc, err)
    assert err.startswith("bye\n"), (mode, err)
    # stdin through to its EOF (v5's close signal / SPDY's FIN), 2 MiB of it
    data = os.urandom(1 << 21)
    rc, out, err = kubectl(env, ["exec", "-i", "p", "--", "cat"], stdin=data)
    assert rc == 0 and out == data, (mode, rc, len(out), err)
    # 8 MiB of output
    rc, out, err = kubectl(env, ["exec", "p", "--", "big", str(8 << 20)])
    assert rc == 0 and len(out) == 8 << 20 and out[:26] == b"abcdefghijklmnopqrstuvwxyz", (
        mode, rc, len(out), err)
    # the runtime cannot run it: kubelet's InternalError
    rc, out, err = kubectl(env, ["exec", "p", "--", "fail"])
    assert rc == 1 and "error executing command in container: no such process" in err, (
        mode, rc, err)
    rc, out, err = kubectl(env, ["attach", "-i", "p"], stdin=b"attached\n")
    assert rc == 0 and out == b"attached\n", (mode, rc, out, err)
    # a TTY (through script(1)'s pty): kubectl sends the terminal's size on the resize channel
    if shutil.which("script"):
        p = subprocess.run(["script", "-qec", f"stty cols 101 rows 31; {KUBECTL} exec -it p -- size",
                            "/dev/null"], capture_output=True, env=env, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and b"size 101x31" in p.stdout, (mode, p.returncode, p.stdout,
                                                                  p.stderr)
    print(f"ok: kubectl exec/attach over {mode}: {log()}")


def ws_cases(port):
    try:
        import websocket
    except ImportError:
        print("note: no python3-websocket; its checks skipped")
        return
    url = (f"ws://127.0.0.1:{port}/api/v1/namespaces/default/pods/p/exec?"
           "command=echo&command=hi&stdout=true")
    ws = websocket.create_connection(url, subprotocols=["v4.channel.k8s.io"])
    got = []
    while True:
        op, data = ws.recv_data(control_frame=False)
        if op == websocket.ABNF.OPCODE_CLOSE:
            assert data[:2] == b"\x03\xe8", data
            break
        got.append((op, data))
    assert all(op == websocket.ABNF.OPCODE_BINARY for op, _ in got), got
    assert got[0][1] == b"\x01", got  # kubelet's empty first message
    assert b"".join(d[1:] for _, d in got if d[0] == 1) == b"hi\n", got
    assert got[-1][1][0] == 3 and json.loads(got[-1][1][1:]) == {"metadata": {}, "status": "Success"}
    ws = websocket.create_connection(url.replace("command=hi", "command=b64"),
                                     subprotocols=["base64.channel.k8s.io"])
    op, data = ws.recv_data()
    assert (op, data) == (websocket.ABNF.OPCODE_TEXT, b"1"), (op, data)
    out = b""
    while True:
        op, data = ws.recv_data()
        if op != websocket.ABNF.OPCODE_TEXT or data[:1] != b"1":
            break
        out += base64.b64decode(data[1:])
    # a pre-v4 protocol: nothing on the error channel for a success, just the close
    assert out == b"b64\n" and (op, data[:2]) == (websocket.ABNF.OPCODE_CLOSE, b"\x03\xe8"), (
        out, op, data)
    print("ok: python3-websocket", websocket.__version__, "v4.channel.k8s.io, base64.channel.k8s.io")


def main():
    if not KUBECTL:
        print("SKIP: no kubectl on PATH")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="kedge-rc-interop-")
    srv_log = open(os.path.join(work, "server.log"), "w+")
    srv = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=srv_log)
    try:
        port = int(srv.stdout.readline())
        cfg = os.path.join(work, "kubeconfig")
        with open(cfg, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u, namespace: default}}}}]
current-context: x
""")
        env = dict(os.environ, KUBECONFIG=cfg, HOME=work)

        def sessions():
            srv_log.seek(0)
            lines = [l.strip() for l in srv_log if l.startswith("session ")]
            srv_log.seek(0, 2)
            return sorted(set(lines))

        exec_cases(dict(env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS="true"), "websocket", sessions)
        assert sessions() == ["session websocket v5.channel.k8s.io"], sessions()
        exec_cases(dict(env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS="false"), "spdy", sessions)
        assert sessions() == ["session spdy v4.channel.k8s.io",
                              "session websocket v5.channel.k8s.io"], sessions()
        ws_cases(port)
    except Exception:
        srv_log.seek(0)
        sys.stderr.write("server log:\n" + srv_log.read())
        raise
    finally:
        srv.stdin.close()
        srv.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
