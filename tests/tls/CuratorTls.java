// Curator over TLS (tests/tls/tls_test.py): the ZooKeeper client underneath takes its TLS
// settings from the zookeeper.client.secure / zookeeper.ssl.* system properties.
// usage: java CuratorTls HOST:PORT PATH   -> prints "counter=3" after three increments.
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.retry.RetryNTimes;

public class CuratorTls {
    public static void main(String[] args) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(args[0], 10000, 5000, new RetryNTimes(3, 200));
        c.start();
        if (!c.blockUntilConnected(20, TimeUnit.SECONDS)) {
            System.out.println("not connected");
            System.exit(1);
        }
        DistributedAtomicLong counter = new DistributedAtomicLong(c, args[1], new RetryNTimes(10, 50));
        AtomicValue<Long> v = null;
        for (int i = 0; i < 3; i++) {
            v = counter.increment();
            if (!v.succeeded()) {
                System.out.println("increment failed");
                System.exit(1);
            }
        }
        System.out.println("counter=" + v.postValue());
        c.close();
    }
}
