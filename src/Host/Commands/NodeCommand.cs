using System.CommandLine;
using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MoCo.Actors.Nodes;
using MoCo.Actors.Training;
using MoCo.Host.Configuration;
using MoCo.Host.Hosting;
using Spectre.Console;

namespace MoCo.Host.Commands;

/// <summary>
/// <c>moco node --join HOST:PORT</c>: a process that joins the cluster of a run started with <c>moco train --port</c> and
/// offers its device slots; the run's director creates workers on it, which take the run's state from a surviving
/// worker. The process ends when the run ends (or its director's node goes away), or on Ctrl-C / SIGTERM, leaving the
/// cluster gracefully; with <c>--stay</c> it joins again after a run ends or its trainer goes away, and only a signal ends it;
/// with <c>--until-complete</c> it joins again until the run it serves completes (exit 0) or fails (exit 1), and a
/// signal ends it with <see cref="ExitCodes.LeftBeforeCompletion"/> (a Job's worker pod, k8s/job).
/// </summary>
public static class NodeCommand
{
    public static Command Create()
    {
        var command = new Command("node", "Join a run's cluster and offer this machine's devices to it.");
        var join = new Option<string?>("--join") { Description = "HOST:PORT of a node of the cluster (the moco train process); or moco.cluster.seed-nodes" };
        var devices = new Option<int>("--devices") { Description = "Worker slots this node offers (default 1)", DefaultValueFactory = _ => 1 };
        var config = new Option<string?>("--config") { Description = "A HOCON file instead of the quickstart preset (its moco.cluster and moco.host sections)" };
        command.Options.Add(join);
        command.Options.Add(devices);
        command.Options.Add(config);
        var stay = new Option<bool>("--stay")
        {
            Description = "Stay for the next run: when the run ends or its trainer goes away (or cannot be reached), join again instead of exiting; "
                + "only SIGTERM or Ctrl-C end the process (for a Kubernetes pod or a systemd service)",
        };
        command.Options.Add(stay);
        var untilComplete = new Option<bool>("--until-complete")
        {
            Description = "Serve one run to its end: join again while the trainer is not reachable yet or restarts (as --stay), exit 0 when the run "
                + "completes and 1 when it fails; SIGTERM or Ctrl-C leave the cluster and exit 143 (for a Kubernetes Job's pod)",
        };
        command.Options.Add(untilComplete);
        var clusterOptions = TrainCommand.AddSectionOptions<ClusterSettings>(command, "moco.cluster", exclude: ["secret", "seed-nodes"]);
        var hostOptions = TrainCommand.AddSectionOptions<HostSettings>(command, "moco.host");
        command.SetAction(parse =>
        {
            var (cfg, source) = Presets.Load(null, parse.GetValue(config));
            cfg = Presets.WithEnvironment(cfg, Environment.GetEnvironmentVariables());
            var clusterValues = TrainCommand.Collect(parse, clusterOptions);
            if (parse.GetValue(join) is { } seed)
            {
                clusterValues["seed-nodes"] = seed;
            }

            cfg = Presets.WithOverrides(cfg, "moco.cluster", clusterValues);
            cfg = Presets.WithOverrides(cfg, "moco.host", TrainCommand.Collect(parse, hostOptions));
            SettingsReader.CheckSections(cfg, "moco", Presets.Sections, source);
            var cluster = SettingsReader.Read<ClusterSettings>(cfg, "moco.cluster", source).Validate();
            var host = SettingsReader.Read<HostSettings>(cfg, "moco.host", source).Validate();
            var metrics = SettingsReader.Read<Metrics.MetricsSettings>(cfg, "moco.metrics", source);
            int slots = parse.GetValue(devices);
            if (slots < 1)
            {
                throw new ConfigurationError($"--devices must be at least 1, not {slots}");
            }

            var (device, deviceLine) = DeviceChoice.Choose(host.Device, slots);
            var (backend, planeLine) = DataPlaneChoice.Choose(SettingsReader.Read<DataPlaneSettings>(cfg, "moco.data-plane", source), device);
            AnsiConsole.MarkupLine(Markup.Escape(deviceLine));
            AnsiConsole.MarkupLine(Markup.Escape(planeLine));
            if (cluster.ProtectionWarning() is { } unprotected)
            {
                AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(unprotected)}[/]");
            }
            var mode = (parse.GetValue(stay), parse.GetValue(untilComplete)) switch
            {
                (true, true) => throw new ConfigurationError("--stay and --until-complete exclude each other: --stay serves run after run until a signal, "
                    + "--until-complete one run until it completes"),
                (true, false) => NodeMode.Stay,
                (false, true) => NodeMode.UntilComplete,
                _ => NodeMode.UntilRunEnds,
            };
            return Run(cluster, host, metrics, slots, device, backend, cfg, mode);
        });
        return command;
    }

    private static int Run(ClusterSettings cluster, HostSettings host, Metrics.MetricsSettings metricsSettings, int devices, MoCo.Model.Training.ComputeDevice device,
        MoCo.Actors.Collectives.DataPlaneKind backend, Akka.Configuration.Config tuning, NodeMode mode)
    {
        var console = AnsiConsole.Console;
        cluster.RequireCredentials(multiNode: true);
        console.MarkupLine(Markup.Escape(TrainCommand.RemotingLine(cluster)));
        var dataPlane = TrainingHost.DataPlane(cluster, multiNode: true);
        using var metrics = new Metrics.MocoMetrics();
        using var endpoint = Metrics.MetricsEndpoint.Start(metricsSettings, metrics);
        var settings = new NodeAgentSettings(devices, host.EffectiveThreads, host.LoaderThreadsPerWorker(devices),
            Path.Combine(host.RunsRoot, "node"), dataPlane)
        {
            CollectiveTimeout = TimeSpan.FromSeconds(host.CollectiveTimeoutSeconds),
            TakeoverWait = host.TakeoverWait,
            Device = device,
            Backend = backend,
            Bucketing = host.Bucketing,
            NumericsCheck = host.NumericsCheck,
            ImageCacheBytes = host.ImageCacheBytes,
        };

        // one registration for the whole process: a signal stops the attempt under way (a graceful leave) and the loop
        using var signals = new StopSignals();
        var stopping = signals.Token;
        var wait = StayRetryMin;
        bool rejoin = mode != NodeMode.UntilRunEnds;
        string flag = mode == NodeMode.Stay ? "--stay" : "--until-complete";
        // --until-complete: a signal before the run completed is no success, or a Job would count this worker as done
        int signalled = mode == NodeMode.UntilComplete ? ExitCodes.LeftBeforeCompletion : ExitCodes.Success;
        while (true)
        {
            var (code, joined, outcome) = Attempt(console, cluster, tuning, settings, endpoint, rejoin, stopping, l => signals.OnStop = l);
            if (stopping.IsCancellationRequested)
            {
                return signalled;
            }

            if (mode == NodeMode.UntilComplete && UntilCompleteExit(outcome) is { } final)
            {
                return final;
            }

            if (!rejoin)
            {
                return code;
            }

            // the run ended (--stay), its trainer went away (an interrupt, a restart), or it could not be reached: join
            // again rather than exit and be restarted by a supervisor with growing delays
            wait = joined ? StayRetryMin : TimeSpan.FromSeconds(Math.Min(StayRetryMax.TotalSeconds, wait.TotalSeconds * 2));
            console.MarkupLine($"[yellow]{flag}[/]: joining again in {wait.TotalSeconds:F0} s");
            // between two memberships the process is alive (the liveness probe must not restart it) and not ready
            endpoint?.UseIdle($"between memberships ({flag})");
            if (stopping.WaitHandle.WaitOne(wait))
            {
                return signalled;
            }
        }
    }

    /// <summary>
    /// The exit code of <c>--until-complete</c> for how its membership ended (<paramref name="outcome"/>: the outcome the
    /// run's director sent, which is the name of its final message, or why the membership ended otherwise); null where
    /// the node joins again: the trainer was interrupted or went away, or the node could not reach it.
    /// </summary>
    internal static int? UntilCompleteExit(string? outcome) => outcome switch
    {
        nameof(TrainingDirector.RunCompleted) => ExitCodes.Success,
        nameof(TrainingDirector.RunFailed) => ExitCodes.RunFailed,
        _ => null,
    };

    /// <summary>What the process does when a membership ends.</summary>
    private enum NodeMode
    {
        /// <summary>No flag: exit when the run ends or the trainer goes away.</summary>
        UntilRunEnds,

        /// <summary><c>--stay</c>: join again, whatever happened; only a signal ends the process.</summary>
        Stay,

        /// <summary><c>--until-complete</c>: join again until the run completes or fails.</summary>
        UntilComplete,
    }

    private static readonly TimeSpan StayRetryMin = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan StayRetryMax = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan LeaveWait = TimeSpan.FromSeconds(60);

    /// <summary>
    /// One membership of the cluster: a fresh actor system joins the seed nodes, the node agent offers the devices and
    /// serves the run until it ends, the trainer goes away, this node is downed, or <paramref name="stopping"/> fires (a
    /// graceful leave). Returns the exit code, whether the node had joined, and how the membership ended (the director's
    /// outcome, see <see cref="UntilCompleteExit"/>; null when the node never became Up).
    /// </summary>
    private static (int Code, bool Joined, string? Outcome) Attempt(IAnsiConsole console, ClusterSettings cluster, Akka.Configuration.Config akka, NodeAgentSettings settings,
        Metrics.MetricsEndpoint? endpoint, bool stay, CancellationToken stopping, Action<Action<string>?> setLeave)
    {
        using var akkaHost = TrainingHost.BuildNode(cluster, akka);
        akkaHost.StartAsync().GetAwaiter().GetResult();
        var system = akkaHost.Services.GetRequiredService<ActorSystem>();
        endpoint?.UseHealthChecks(akkaHost.Services);
        var ended = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        // downed by the cluster (split-brain resolver, or refused by the run's director): the actor system stops
        system.WhenTerminated.ContinueWith(_ => ended.TrySetResult("this node left the cluster (downed or removed)"), TaskScheduler.Default);
        IActorRef? agent = null;
        void LeaveGracefully(string reason)
        {
            // tell the run's director first, so that it forms a new generation without this node instead of counting a
            // failure; the workers finish the chunk of steps they hold, so that the others lose no step. Bounded well
            // inside the worker pods' termination grace period (120 s in k8s/): past it the process leaves anyway, and
            // the others redo the step they were in
            try
            {
                var acked = agent?.Ask<NodeAgent.LeaveAck>(new NodeAgent.Leave(reason), LeaveWait);
                if (acked is not null && !acked.Wait(TimeSpan.FromSeconds(2)))
                {
                    console.MarkupLine($"[yellow]leaving[/] ({Markup.Escape(reason)}): this node's workers finish the chunk of steps they hold first (at most {LeaveWait.TotalSeconds:F0} s)");
                    acked.Wait(LeaveWait + TimeSpan.FromSeconds(1));
                }
            }
            catch (AggregateException)
            {
            }

            ended.TrySetResult(reason + ": left the cluster");
        }

        setLeave(LeaveGracefully);
        try
        {
            if (stopping.IsCancellationRequested)
            {
                return (0, false, null);
            }

            // the agent exists before this node is Up, so the director's first question finds it
            agent = system.ActorOf(NodeAgentActor.Props(settings, ended), NodeAgent.Name);
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => up.TrySetResult());
            if (Task.WaitAny([up.Task, ended.Task], TimeSpan.FromSeconds(60)) < 0)
            {
                const string notUp = "this node did not become an Up member of the cluster within 60 s; check --join and that the node is reachable";
                if (!stay)
                {
                    throw new ConfigurationError(notUp);
                }

                console.MarkupLine($"[yellow]{notUp}[/]");
                return (1, false, null);
            }

            if (ended.Task.IsCompleted && !up.Task.IsCompleted)
            {
                if (stopping.IsCancellationRequested)
                {
                    console.MarkupLine($"node done: {Markup.Escape(ended.Task.Result)}");
                    return (0, false, null);
                }

                console.MarkupLine($"[red]node refused[/]: {Markup.Escape(ended.Task.Result)}");
                return (1, false, null);
            }

            console.MarkupLine($"node [cyan]{Markup.Escape(Akka.Cluster.Cluster.Get(system).SelfAddress.ToString())}[/] joined the cluster; offering {settings.Devices} device(s)");
            var outcome = ended.Task.GetAwaiter().GetResult();
            console.MarkupLine($"node done: {Markup.Escape(outcome)}");
            return (outcome.StartsWith("this node left the cluster", StringComparison.Ordinal) ? 1 : 0, true, outcome);
        }
        finally
        {
            setLeave(null);
            // leaves the cluster gracefully (coordinated shutdown)
            akkaHost.StopAsync().Wait(TimeSpan.FromSeconds(30));
        }
    }
}
