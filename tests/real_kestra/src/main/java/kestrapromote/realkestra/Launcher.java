package kestrapromote.realkestra;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

import io.kestra.core.models.executions.Execution;
import io.kestra.core.models.executions.LogEntry;
import io.kestra.core.models.executions.TaskRun;
import io.kestra.core.models.flows.FlowInterface;
import io.kestra.core.models.flows.FlowSource;
import io.kestra.core.models.flows.FlowWithSource;
import io.kestra.core.models.flows.GenericFlow;
import io.kestra.core.models.validations.ValidateConstraintViolation;
import io.kestra.core.runners.FlowInputOutput;
import io.kestra.core.runners.TestRunner;
import io.kestra.core.runners.TestRunnerUtils;
import io.kestra.core.serializers.JacksonMapper;
import io.kestra.core.services.FlowService;
import io.micronaut.context.ApplicationContext;

/**
 * Runs Kestra's own engine in this process and answers one command with JSON on stdout.
 *
 * <pre>
 *   validate FILE...                      Kestra's verdict on each flow file
 *   run [--flow FILE]... [--timeout PT60S] [--execute NS.ID [--input NAME=VALUE]...]...
 * </pre>
 *
 * The engine is the one Kestra's plugin projects test with: in-memory repository and queues
 * (H2 in memory), local storage in a temporary folder, and the executor, worker, scheduler and
 * indexer started by the runner of io.kestra:tests.
 */
public final class Launcher {
    static final String TENANT = "main";

    private Launcher() {
    }

    public static void main(String[] args) throws Exception {
        // stdout carries the JSON answer alone: whatever Kestra prints goes to stderr
        PrintStream answer = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        System.setOut(System.err);
        if (args.length == 0) {
            System.err.println("usage: validate FILE... | run [--flow FILE]... [--timeout PT60S] "
                + "[--execute NS.ID [--input NAME=VALUE]...]...");
            System.exit(2);
        }
        Path storage = Files.createTempDirectory("real-kestra-storage");
        int status = 1;
        try {
            ApplicationContext context = ApplicationContext.run(engineProperties(storage), "test");
            Object result = switch (args[0]) {
                case "validate" -> validate(context, List.of(args).subList(1, args.length));
                case "run" -> run(context, Options.parse(List.of(args).subList(1, args.length)));
                default -> throw new IllegalArgumentException("unknown command: " + args[0]);
            };
            answer.println(JacksonMapper.ofJson().writeValueAsString(result));
            status = 0;
        } catch (Exception e) {
            e.printStackTrace();
            answer.println(JacksonMapper.ofJson().writeValueAsString(Map.of("error", String.valueOf(e))));
        }
        // nothing of the engine outlives the answer (in-memory repository and queues): stop at once
        // rather than wait for each service's graceful shutdown (seconds on 2.0)
        answer.flush();
        deleteTree(storage);
        Runtime.getRuntime().halt(status);
    }

    static Map<String, Object> engineProperties(Path storage) {
        Map<String, Object> properties = new LinkedHashMap<>();
        properties.put("kestra.repository.type", "memory");
        properties.put("kestra.queue.type", "memory");
        properties.put("kestra.storage.type", "local");
        properties.put("kestra.storage.local.base-path", storage.toString());
        properties.put("kestra.server.liveness.enabled", "false");
        properties.put("kestra.server.termination-grace-period", "5s");
        properties.put("kestra.queues.min-poll-interval", "10ms");
        properties.put("kestra.queues.max-poll-interval", "100ms");
        // 2.0: the worker reaches the executor through the worker controller (gRPC), here on a
        // free loopback port; 1.3 has no controller and ignores these
        int port = freePort();
        properties.put("kestra.controller.port", port);
        properties.put("kestra.worker.controllers.type", "STATIC");
        properties.put("kestra.worker.controllers.static.endpoints[0].host", "127.0.0.1");
        properties.put("kestra.worker.controllers.static.endpoints[0].port", port);
        properties.put("grpc.server.enabled", "false");
        return properties;
    }

    private static void deleteTree(Path root) {
        try (var paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        } catch (java.io.IOException e) {
            System.err.println("could not delete " + root + ": " + e);
        }
    }

    private static int freePort() {
        try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Kestra's verdict on each file, as its API's flow validation gives it (FlowService.validate). */
    static List<Map<String, Object>> validate(ApplicationContext context, List<String> files) throws Exception {
        FlowService flows = context.getBean(FlowService.class);
        List<FlowSource> sources = new ArrayList<>();
        for (String file : files) {
            sources.add(new FlowSource(file, Files.readString(Path.of(file))));
        }
        List<Map<String, Object>> verdicts = new ArrayList<>();
        for (ValidateConstraintViolation verdict : flows.validate(TENANT, sources)) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("file", verdict.getFilename());
            entry.put("valid", verdict.getConstraints() == null);
            entry.put("constraints", verdict.getConstraints());
            entry.put("warnings", verdict.getWarnings());
            entry.put("deprecationPaths", verdict.getDeprecationPaths());
            entry.put("infos", verdict.getInfos());
            verdicts.add(entry);
        }
        return verdicts;
    }

    /**
     * Saves the flows (as the API's flow creation does), starts the engine, runs each execution
     * asked for to its end, one after the other, and reports each.
     */
    static Map<String, Object> run(ApplicationContext context, Options options) throws Exception {
        FlowService flows = context.getBean(FlowService.class);
        List<Map<String, Object>> saved = new ArrayList<>();
        for (String file : options.flows) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("file", file);
            try {
                FlowWithSource flow = save(flows, GenericFlow.fromYaml(TENANT, Files.readString(Path.of(file))));
                entry.put("saved", flow.getNamespace() + "." + flow.getId());
            } catch (Exception e) {
                entry.put("error", String.valueOf(e));
            }
            saved.add(entry);
        }
        context.getBean(TestRunner.class).run();

        List<Map<String, Object>> executions = new ArrayList<>();
        for (Options.Run wanted : options.runs) {
            try {
                executions.add(execute(context, wanted, options.timeout));
            } catch (Exception e) {
                executions.add(Map.of("flow", wanted.flow(), "error", String.valueOf(e)));
            }
        }
        return Map.of("flows", saved, "executions", executions);
    }

    private static Map<String, Object> execute(ApplicationContext context, Options.Run wanted, Duration timeout) throws Exception {
        int dot = wanted.flow().lastIndexOf('.');
        String namespace = wanted.flow().substring(0, dot);
        String flowId = wanted.flow().substring(dot + 1);
        FlowInputOutput inputs = context.getBean(FlowInputOutput.class);
        // typed as Kestra types the inputs of an execution created through its API
        Map<String, ?> given = wanted.inputs();
        BiFunction<FlowInterface, Execution, Map<String, Object>> typed =
            (flow, started) -> inputs.readExecutionInputs(flow, started, given);
        Execution execution = context.getBean(TestRunnerUtils.class).runOne(
            TENANT, namespace, flowId, null, typed, timeout);

        Map<String, Object> report = new LinkedHashMap<>();
        report.put("flow", wanted.flow());
        report.put("state", execution.getState().getCurrent().name());
        List<Map<String, Object>> taskRuns = new ArrayList<>();
        for (TaskRun taskRun : execution.getTaskRunList() == null ? List.<TaskRun>of() : execution.getTaskRunList()) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("taskId", taskRun.getTaskId());
            entry.put("value", taskRun.getValue());
            entry.put("state", taskRun.getState().getCurrent().name());
            entry.put("outputs", taskRun.getOutputs());
            taskRuns.add(entry);
        }
        report.put("taskRuns", taskRuns);
        report.put("outputs", execution.getOutputs());
        report.put("logs", logs(context, execution));
        return report;
    }

    private static List<Map<String, Object>> logs(ApplicationContext context, Execution execution) throws Exception {
        // the indexer stores the logs a moment after the execution ends
        List<LogEntry> found = List.of();
        for (int attempt = 0; attempt < 20; attempt++) {
            found = findLogs(context, execution.getId());
            if (!found.isEmpty()) {
                Thread.sleep(300);
                found = findLogs(context, execution.getId());
                break;
            }
            Thread.sleep(100);
        }
        List<Map<String, Object>> logs = new ArrayList<>();
        for (LogEntry log : found) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("taskId", log.getTaskId());
            entry.put("level", log.getLevel() == null ? null : log.getLevel().name());
            entry.put("message", log.getMessage());
            logs.add(entry);
        }
        return logs;
    }

    /** The logs' store is LogRepositoryInterface on 1.3 and LogDataStoreInterface on 2.0. */
    @SuppressWarnings("unchecked")
    private static List<LogEntry> findLogs(ApplicationContext context, String executionId) throws Exception {
        for (String name : List.of("io.kestra.core.repositories.LogRepositoryInterface",
                                   "io.kestra.core.repositories.LogDataStoreInterface")) {
            Class<?> store;
            try {
                store = Class.forName(name);
            } catch (ClassNotFoundException e) {
                continue;
            }
            return (List<LogEntry>) store.getMethod("findByExecutionId", String.class, String.class, org.slf4j.event.Level.class)
                .invoke(context.getBean(store), TENANT, executionId, null);
        }
        throw new IllegalStateException("no log store found");
    }

    /** FlowService.create takes a strict-validation flag on 1.3 and none on 2.0. */
    private static FlowWithSource save(FlowService flows, GenericFlow flow) throws Exception {
        for (var method : FlowService.class.getMethods()) {
            if (!method.getName().equals("create") || method.getParameterTypes()[0] != GenericFlow.class) {
                continue;
            }
            try {
                return (FlowWithSource) (method.getParameterCount() == 2
                    ? method.invoke(flows, flow, true)
                    : method.invoke(flows, flow));
            } catch (java.lang.reflect.InvocationTargetException e) {
                throw e.getCause() instanceof Exception cause ? cause : e;
            }
        }
        throw new IllegalStateException("FlowService.create(GenericFlow...) not found");
    }

    /** The run command's options: each --execute starts an execution, with the --input after it. */
    record Options(List<String> flows, List<Run> runs, Duration timeout) {
        record Run(String flow, Map<String, Object> inputs) {
        }

        static Options parse(List<String> args) {
            List<String> flows = new ArrayList<>();
            List<Run> runs = new ArrayList<>();
            Duration timeout = Duration.ofSeconds(60);
            for (int i = 0; i + 1 < args.size(); i += 2) {
                String value = args.get(i + 1);
                switch (args.get(i)) {
                    case "--flow" -> flows.add(value);
                    case "--timeout" -> timeout = Duration.parse(value);
                    case "--execute" -> {
                        if (!value.contains(".")) {
                            throw new IllegalArgumentException("--execute NAMESPACE.FLOW_ID, not " + value);
                        }
                        runs.add(new Run(value, new LinkedHashMap<>()));
                    }
                    case "--input" -> {
                        int eq = value.indexOf('=');
                        if (runs.isEmpty() || eq < 0) {
                            throw new IllegalArgumentException("--input NAME=VALUE follows an --execute");
                        }
                        runs.get(runs.size() - 1).inputs().put(value.substring(0, eq), value.substring(eq + 1));
                    }
                    default -> throw new IllegalArgumentException("unknown option: " + args.get(i));
                }
            }
            if (args.size() % 2 != 0) {
                throw new IllegalArgumentException("option without a value: " + args.get(args.size() - 1));
            }
            return new Options(flows, runs, timeout);
        }
    }
}
