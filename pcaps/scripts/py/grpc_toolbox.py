"""gRPC (grpcio) server and client of the grpc-h2c-negative fixture.

  grpc_toolbox.py GENDIR server PORT   serve acme.toolbox.v1.Toolbox on 127.0.0.1
  grpc_toolbox.py GENDIR client PORT   one unary ListTools + one server-streaming
                                       WatchStock (3 updates), insecure channel (h2c)

GENDIR holds toolbox_pb2*.py generated from proto/toolbox.proto by grpc_tools.protoc
(the fixture script generates them; they are not committed).
"""

import signal
import sys
import threading
from concurrent import futures

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import toolbox_pb2 as pb  # noqa: E402
import toolbox_pb2_grpc as rpc  # noqa: E402

mode, port = sys.argv[2], int(sys.argv[3])
TOOLS = [pb.Tool(name="hammer", description="Claw hammer, 16 oz", stock=12),
         pb.Tool(name="wrench", description="Adjustable wrench", stock=0)]


class Toolbox(rpc.ToolboxServicer):
    def ListTools(self, request, context):
        return pb.ListToolsResponse(tools=TOOLS[: request.page_size or len(TOOLS)])

    def WatchStock(self, request, context):
        for seq in range(min(request.updates, 10)):
            yield pb.StockUpdate(name=request.name, stock=12 - seq, seq=seq + 1)


if mode == "server":
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc.add_ToolboxServicer_to_server(Toolbox(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait(85)
    server.stop(0)
else:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = rpc.ToolboxStub(channel)
        resp = stub.ListTools(pb.ListToolsRequest(category="hand-tools", page_size=2), timeout=10)
        print("ListTools", [t.name for t in resp.tools])
        for upd in stub.WatchStock(pb.WatchStockRequest(name="hammer", updates=3), timeout=10):
            print("WatchStock", upd.name, upd.stock, upd.seq)
