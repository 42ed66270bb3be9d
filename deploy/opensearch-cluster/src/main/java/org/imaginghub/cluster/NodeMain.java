package org.imaginghub.cluster;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * Runs one OpenSearch node in this JVM until the process is told to stop.
 *
 * <p>Usage: {@code NodeMain HOME [-Ekey=value ...]}. HOME/config/opensearch.yml holds the
 * node's settings (the launcher writes it: cluster and node names, ports, seed hosts, paths);
 * {@code -E} arguments override single settings. The modules a distribution would load from
 * its modules/ directory are classpath plugins here, which is why the node is started through
 * the protected {@link Node} constructor instead of OpenSearch's own bootstrap (which would
 * also install a security manager this classpath layout cannot satisfy).
 */
public final class NodeMain {

    private static final Collection<Class<? extends Plugin>> MODULES = List.of(
            Netty4Plugin.class,
            CommonAnalysisPlugin.class,
            MapperExtrasPlugin.class,
            PainlessPlugin.class,
            ReindexPlugin.class);

    private NodeMain() {
    }

    /** A node with the modules above on its classpath; the constructor is protected. */
    private static final class ModuleNode extends Node {
        ModuleNode(final Environment environment) {
            super(environment, MODULES, true);
        }
    }

    public static void main(final String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: NodeMain HOME [-Ekey=value ...]");
            System.exit(2);
        }
        final Path home = Path.of(args[0]).toAbsolutePath();
        final Path config = home.resolve("config");
        if (!Files.isRegularFile(config.resolve("opensearch.yml"))) {
            System.err.println("NodeMain: no " + config.resolve("opensearch.yml"));
            System.exit(2);
        }
        final Settings.Builder overrides = Settings.builder().put("path.home", home.toString());
        for (int i = 1; i < args.length; i++) {
            final String arg = args[i];
            final int eq = arg.indexOf('=');
            if (!arg.startsWith("-E") || eq < 3) {
                System.err.println("NodeMain: expected -Ekey=value, got " + arg);
                System.exit(2);
            }
            overrides.put(arg.substring(2, eq), arg.substring(eq + 1));
        }
        final Environment environment = InternalSettingsPreparer.prepareEnvironment(
                overrides.build(), Map.of(), config,
                () -> Node.NODE_NAME_SETTING.get(overrides.build()));
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));
        LogConfigurator.configure(environment);
        Files.createDirectories(environment.modulesFile());
        Files.createDirectories(environment.pluginsFile());

        final Node node = new ModuleNode(environment);
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (final Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "node-shutdown"));
        try {
            node.start();
        } catch (final Exception e) {
            // A node that cannot start must end its JVM, so the launcher sees it exit.
            e.printStackTrace();
            System.exit(1);
        }
        stopped.await();
    }
}
