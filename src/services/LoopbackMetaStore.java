import java.net.InetSocketAddress;
import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.metastore.HiveMetaStore;
import org.apache.hadoop.hive.metastore.IHMSHandler;
import org.apache.hadoop.hive.metastore.TUGIBasedProcessor;
import org.apache.hadoop.hive.thrift.TUGIContainingTransport;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.transport.TServerSocket;

/** A Hive 2.3 metastore whose Thrift socket is bound to 127.0.0.1 only (HiveMetaStore -p binds *). */
public class LoopbackMetaStore {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        HiveConf conf = new HiveConf(HiveMetaStore.HMSHandler.class);
        HiveMetaStore.HMSHandler base = new HiveMetaStore.HMSHandler("new db based metaserver", conf, false);
        IHMSHandler handler = HiveMetaStore.newRetryingHMSHandler(base, conf);
        TServerSocket socket = new TServerSocket(new InetSocketAddress("127.0.0.1", port));
        TThreadPoolServer.Args serverArgs = new TThreadPoolServer.Args(socket)
            .processor(new TUGIBasedProcessor<IHMSHandler>(handler))
            .transportFactory(new TUGIContainingTransport.Factory())
            .protocolFactory(new TBinaryProtocol.Factory())
            .inputProtocolFactory(new TBinaryProtocol.Factory())
            .minWorkerThreads(4)
            .maxWorkerThreads(64);
        System.out.println("metastore listening on 127.0.0.1:" + port);
        new TThreadPoolServer(serverArgs).serve();
    }
}
