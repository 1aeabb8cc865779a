import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.service.Service;
import org.apache.hadoop.yarn.api.records.ApplicationId;
import org.apache.hadoop.yarn.api.records.NodeId;
import org.apache.hadoop.yarn.api.records.Resource;
import org.apache.hadoop.yarn.api.records.ResourceRequest;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.apache.hadoop.yarn.server.nodemanager.NodeManager;
import org.apache.hadoop.yarn.server.nodemanager.containermanager.container.Container;
import org.apache.hadoop.yarn.server.resourcemanager.ResourceManager;
import org.apache.hadoop.yarn.server.resourcemanager.rmapp.RMApp;
import org.apache.hadoop.yarn.server.resourcemanager.rmapp.attempt.RMAppAttempt;
import org.apache.hadoop.yarn.server.resourcemanager.rmcontainer.RMContainer;
import org.apache.hadoop.yarn.server.resourcemanager.rmnode.RMNode;
import org.apache.hadoop.yarn.server.resourcemanager.scheduler.AbstractYarnScheduler;
import org.apache.hadoop.yarn.server.resourcemanager.scheduler.SchedulerApplicationAttempt;
import org.apache.hadoop.yarn.server.resourcemanager.scheduler.SchedulerNode;
import org.apache.hadoop.yarn.server.resourcemanager.scheduler.capacity.CapacityScheduler;
import org.apache.hadoop.yarn.server.resourcemanager.scheduler.common.PendingAsk;
import org.apache.hadoop.yarn.server.scheduler.SchedulerRequestKey;

/**
 * A MiniYARNCluster for tests/yarn: one ResourceManager and N NodeManagers in this JVM.
 *
 * Arguments: the number of NodeManagers, a properties file of YARN configuration (the Dataproc
 * cluster's YARN properties and the NodeManagers' size, written by minicluster.py), and where to
 * write yarn-site.xml for clients once the ResourceManager has its real ports.
 * Prints "NM <index> <node id>" per NodeManager and then "READY". Reads commands on stdin:
 * "stop-nm <node id>" stops that NodeManager (as if its machine went away; it unregisters) and
 * prints "STOPPED <node id>"; "report" prints one line "REPORT <json>" of the ResourceManager's
 * state (its scheduler's limits, every node, every application with its live containers and
 * pending asks); end of input stops the cluster: at once when no container process is left (the
 * tests stop their jobs first; their containers are given 30 s to end), else by stopping every
 * service, which kills the containers. The ResourceManager's REST API is not usable here: its web
 * services and the NodeManagers' share Guice's static filter in one JVM, and the last
 * NodeManager's wins (the ResourceManager's /ws/v1 answers 404).
 */
public final class MiniYarn {
    private MiniYarn() {
    }

    public static void main(String[] args) throws Exception {
        int nodeManagers = Integer.parseInt(args[0]);
        Properties properties = new Properties();
        try (FileInputStream in = new FileInputStream(args[1])) {
            properties.load(in);
        }
        YarnConfiguration conf = new YarnConfiguration();
        for (String key : properties.stringPropertyNames()) {
            conf.set(key, properties.getProperty(key));
        }
        MiniYARNCluster cluster = new MiniYARNCluster("hydrostream", nodeManagers, 1, 1);
        cluster.init(conf);
        cluster.start();
        if (!cluster.waitForNodeManagersToConnect(120_000)) {
            throw new IllegalStateException("the NodeManagers did not register within 120 s");
        }
        // start() may return before the ResourceManager has written its bound port into the config.
        long deadline = System.currentTimeMillis() + 60_000;
        while (cluster.getConfig().get(YarnConfiguration.RM_ADDRESS).endsWith(":0")) {
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("the ResourceManager never published its address");
            }
            Thread.sleep(100);
        }
        try (OutputStream out = new FileOutputStream(args[2])) {
            cluster.getConfig().writeXml(out);
        }
        for (int i = 0; i < nodeManagers; i++) {
            System.out.println("NM " + i + " " + cluster.getNodeManager(i).getNMContext().getNodeId());
        }
        System.out.println("READY");
        System.out.flush();
        BufferedReader commands = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = commands.readLine()) != null) {
            String[] words = line.trim().split("\\s+");
            if (words.length == 2 && words[0].equals("stop-nm")) {
                for (int i = 0; i < nodeManagers; i++) {
                    NodeManager nm = cluster.getNodeManager(i);
                    if (nm.getNMContext().getNodeId().toString().equals(words[1])) {
                        nm.stop();
                    }
                }
                System.out.println("STOPPED " + words[1]);
                System.out.flush();
            } else if (words.length == 1 && words[0].equals("report")) {
                System.out.println("REPORT " + new ObjectMapper().writeValueAsString(report(cluster)));
                System.out.flush();
            }
        }
        // MiniYARNCluster.stop() spends about 17 s per NodeManager (7 s waiting for applications the
        // ResourceManager has already finished, then 10 s for its log-deletion timer to drain): 34-51 s
        // per cluster of waiting with nothing left to stop once every container has ended. The jobs'
        // containers end within seconds of their drivers, which the tests have just stopped.
        long quiet = System.currentTimeMillis() + 30_000;
        while (anyContainerAlive(cluster, nodeManagers) && System.currentTimeMillis() < quiet) {
            Thread.sleep(100);
        }
        if (!anyContainerAlive(cluster, nodeManagers)) {
            System.out.flush();
            Runtime.getRuntime().halt(0);
        }
        cluster.stop();
    }

    /** Whether a started NodeManager holds a container whose process may still run (not yet ended). */
    private static boolean anyContainerAlive(MiniYARNCluster cluster, int nodeManagers) {
        for (int i = 0; i < nodeManagers; i++) {
            NodeManager nm = cluster.getNodeManager(i);
            if (nm.getServiceState() != Service.STATE.STARTED) {
                continue;
            }
            for (Container container : nm.getNMContext().getContainers().values()) {
                switch (container.getContainerState()) {
                    case DONE:
                    case EXITED_WITH_SUCCESS:
                    case EXITED_WITH_FAILURE:
                    case CONTAINER_CLEANEDUP_AFTER_KILL:
                    case LOCALIZATION_FAILED:
                        break;
                    default:
                        return true;
                }
            }
        }
        return false;
    }

    private static Map<String, Object> resource(Resource resource) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("memory_mb", resource.getMemorySize());
        out.put("vcores", resource.getVirtualCores());
        return out;
    }

    private static Map<String, Object> report(MiniYARNCluster cluster) {
        ResourceManager rm = cluster.getResourceManager();
        AbstractYarnScheduler<?, ?> scheduler = (AbstractYarnScheduler<?, ?>) rm.getResourceScheduler();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("scheduler", scheduler.getClass().getName());
        if (scheduler instanceof CapacityScheduler) {
            out.put("resource_calculator",
                    ((CapacityScheduler) scheduler).getResourceCalculator().getClass().getName());
        }
        out.put("minimum_allocation", resource(scheduler.getMinimumResourceCapability()));
        out.put("maximum_allocation", resource(scheduler.getMaximumResourceCapability()));
        List<Object> nodes = new ArrayList<>();
        List<RMNode> known = new ArrayList<>(rm.getRMContext().getRMNodes().values());
        known.addAll(rm.getRMContext().getInactiveRMNodes().values());
        for (RMNode node : known) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("id", node.getNodeID().toString());
            entry.put("state", node.getState().toString());
            entry.put("total", resource(node.getTotalCapability()));
            SchedulerNode schedulerNode = scheduler.getSchedulerNode(node.getNodeID());
            if (schedulerNode != null) {
                entry.put("allocated", resource(schedulerNode.getAllocatedResource()));
            }
            nodes.add(entry);
        }
        out.put("nodes", nodes);
        List<Object> apps = new ArrayList<>();
        for (Map.Entry<ApplicationId, RMApp> item : rm.getRMContext().getRMApps().entrySet()) {
            RMApp app = item.getValue();
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("id", item.getKey().toString());
            entry.put("name", app.getName());
            entry.put("state", app.getState().toString());
            entry.put("final_status", app.getFinalApplicationStatus().toString());
            entry.put("diagnostics", app.getDiagnostics().toString());
            entry.put("attempts", app.getAppAttempts().size());
            RMAppAttempt attempt = app.getCurrentAppAttempt();
            List<Object> containers = new ArrayList<>();
            List<Object> pending = new ArrayList<>();
            if (attempt != null) {
                entry.put("am_container",
                        attempt.getMasterContainer() == null ? null : attempt.getMasterContainer().getId().toString());
                SchedulerApplicationAttempt running = scheduler.getApplicationAttempt(attempt.getAppAttemptId());
                if (running != null) {
                    for (RMContainer container : running.getLiveContainers()) {
                        Map<String, Object> one = resource(container.getAllocatedResource());
                        one.put("id", container.getContainerId().toString());
                        NodeId node = container.getAllocatedNode();
                        one.put("node", node == null ? null : node.toString());
                        containers.add(one);
                    }
                    for (SchedulerRequestKey key : running.getAppSchedulingInfo().getSchedulerKeys()) {
                        PendingAsk ask = running.getPendingAsk(key, ResourceRequest.ANY);
                        if (ask.getCount() > 0) {
                            Map<String, Object> one = resource(ask.getPerAllocationResource());
                            one.put("count", ask.getCount());
                            pending.add(one);
                        }
                    }
                }
            }
            entry.put("containers", containers);
            entry.put("pending", pending);
            apps.add(entry);
        }
        out.put("applications", apps);
        return out;
    }
}
