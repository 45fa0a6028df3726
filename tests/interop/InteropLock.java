import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessLock;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

/**
 * The Java side of the Curator <-> rzk-client lock interoperability test.
 *
 * usage: InteropLock HOSTS MODE BASE ROUNDS NAME PARTIES HOLD_MS
 *   MODE    mutex : InterProcessMutex on BASE/lock every round
 *           rw    : InterProcessReadWriteLock on BASE/lock, write lock on even rounds,
 *                   read lock on odd rounds
 *
 * The protocol is shared with crates/client/examples/interop_lock.rs (keep them in step):
 *   BASE/ready/NAME     start barrier (ephemeral); everyone waits for PARTIES children
 *   inside a write/exclusive section:
 *     create ephemeral BASE/holder (NODEEXISTS = two holders = violation)
 *     BASE/readers must have no children (a reader inside = violation)
 *     BASE/counter: read, sleep HOLD_MS, write read+1 without a version (lost update =
 *                   violation, detected at the end)
 *     BASE/last: previous holder's NAME (counts hand-overs between parties)
 *     delete BASE/holder
 *   inside a read section:
 *     create ephemeral-sequential BASE/readers/r-, BASE/holder must not exist, sleep,
 *     delete the reader node
 *   BASE/done/NAME      persistent, data = number of exclusive sections done; once
 *                       PARTIES are done, BASE/counter must equal their sum
 * Prints "RESULT name=.. acquired=.. reads=.. handoffs=.. violations=.. counter_ok=.."
 * and exits 1 on any violation or error.
 */
public class InteropLock {
    static CuratorFramework zk;
    static String base;
    static String name;
    static int violations = 0;
    static int handoffs = 0;

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }
    static String s(byte[] d) { return d == null ? "" : new String(d, StandardCharsets.UTF_8); }

    static void violation(String what) {
        violations++;
        System.out.println("VIOLATION " + name + ": " + what);
    }

    static void ensure(String path) throws Exception {
        try {
            zk.create().creatingParentsIfNeeded().forPath(path, b(""));
        } catch (KeeperException.NodeExistsException e) {
            // fine
        }
    }

    static void barrier(String dir, int parties, long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (zk.getChildren().forPath(dir).size() < parties) {
            if (System.currentTimeMillis() > deadline) {
                throw new RuntimeException("barrier " + dir + " timed out");
            }
            Thread.sleep(20);
        }
    }

    static void exclusiveSection(long holdMs) throws Exception {
        try {
            zk.create().withMode(CreateMode.EPHEMERAL).forPath(base + "/holder", b(name));
        } catch (KeeperException.NodeExistsException e) {
            violation("holder node exists (held by " + s(zk.getData().forPath(base + "/holder")) + ")");
        }
        List<String> readers = zk.getChildren().forPath(base + "/readers");
        if (!readers.isEmpty()) {
            violation("readers inside a write section: " + readers);
        }
        long v = Long.parseLong(s(zk.getData().forPath(base + "/counter")));
        Thread.sleep(holdMs);
        zk.setData().forPath(base + "/counter", b(Long.toString(v + 1)));
        String last = s(zk.getData().forPath(base + "/last"));
        if (!last.isEmpty() && !last.equals(name)) {
            handoffs++;
        }
        zk.setData().forPath(base + "/last", b(name));
        try {
            zk.delete().forPath(base + "/holder");
        } catch (KeeperException.NoNodeException e) {
            violation("holder node vanished inside the section");
        }
    }

    static void readSection(long holdMs) throws Exception {
        String mine = zk.create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL)
            .forPath(base + "/readers/r-", b(name));
        if (zk.checkExists().forPath(base + "/holder") != null) {
            violation("writer inside a read section");
        }
        Thread.sleep(holdMs);
        zk.delete().forPath(mine);
    }

    public static void main(String[] a) throws Exception {
        if (a.length != 7) {
            System.err.println("usage: InteropLock HOSTS MODE BASE ROUNDS NAME PARTIES HOLD_MS");
            System.exit(2);
        }
        String hosts = a[0];
        String mode = a[1];
        base = a[2];
        int rounds = Integer.parseInt(a[3]);
        name = a[4];
        int parties = Integer.parseInt(a[5]);
        long holdMs = Long.parseLong(a[6]);
        zk = CuratorFrameworkFactory.builder()
            .connectString(hosts)
            .sessionTimeoutMs(15000)
            .connectionTimeoutMs(10000)
            .retryPolicy(new ExponentialBackoffRetry(100, 5))
            .build();
        zk.start();
        if (!zk.blockUntilConnected(20, TimeUnit.SECONDS)) {
            System.out.println("RESULT name=" + name + " error=connect");
            System.exit(1);
        }
        for (String p : new String[] {"/ready", "/readers", "/done", "/lock"}) {
            ensure(base + p);
        }
        for (String p : new String[] {"/counter", "/last"}) {
            try {
                zk.create().forPath(base + p, b(p.equals("/counter") ? "0" : ""));
            } catch (KeeperException.NodeExistsException e) {
                // another party made it
            }
        }
        zk.create().withMode(CreateMode.EPHEMERAL).forPath(base + "/ready/" + name, b(""));
        barrier(base + "/ready", parties, 120_000);

        InterProcessReadWriteLock rw = new InterProcessReadWriteLock(zk, base + "/lock");
        InterProcessMutex mutex = new InterProcessMutex(zk, base + "/lock");
        Random rnd = new Random();
        int acquired = 0, reads = 0, writes = 0;
        for (int i = 0; i < rounds; i++) {
            boolean read = mode.equals("rw") && i % 2 == 1;
            InterProcessLock lock = mode.equals("rw")
                ? (read ? rw.readLock() : rw.writeLock())
                : mutex;
            if (!lock.acquire(60, TimeUnit.SECONDS)) {
                System.out.println("RESULT name=" + name + " error=acquire-timeout round=" + i);
                System.exit(1);
            }
            acquired++;
            try {
                if (read) {
                    readSection(holdMs);
                    reads++;
                } else {
                    exclusiveSection(holdMs);
                    writes++;
                }
            } finally {
                lock.release();
            }
            Thread.sleep(rnd.nextInt((int) holdMs + 1));
        }

        zk.create().forPath(base + "/done/" + name, b(Integer.toString(writes)));
        barrier(base + "/done", parties, 300_000);
        long total = 0;
        for (String d : zk.getChildren().forPath(base + "/done")) {
            total += Long.parseLong(s(zk.getData().forPath(base + "/done/" + d)));
        }
        long counter = Long.parseLong(s(zk.getData().forPath(base + "/counter")));
        boolean counterOk = counter == total;
        if (!counterOk) {
            violation("counter " + counter + " != " + total + " exclusive sections (lost update)");
        }
        System.out.println("RESULT name=" + name + " acquired=" + acquired + " reads=" + reads
            + " handoffs=" + handoffs + " violations=" + violations + " counter_ok=" + counterOk);
        zk.close();
        System.exit(violations == 0 ? 0 : 1);
    }
}
