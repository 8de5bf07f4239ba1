using System.CommandLine;
using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MoCo.Actors.Nodes;
using MoCo.Host.Configuration;
using MoCo.Host.Hosting;
using Spectre.Console;

namespace MoCo.Host.Commands;

/// <summary>
/// <c>moco node --join HOST:PORT</c>: a process that joins the cluster of a run started with <c>moco train --port</c> and
/// offers its device slots; the run's director creates workers on it, which take the run's state from a surviving
/// worker. The process ends when the run ends (or its director's node goes away), or on Ctrl-C / SIGTERM, leaving the
/// cluster gracefully.
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
            var (device, deviceLine) = DeviceChoice.Choose(host.Device, Math.Max(1, slots));
            var (backend, planeLine) = DataPlaneChoice.Choose(SettingsReader.Read<DataPlaneConfig>(cfg, "moco.data-plane", source), device);
            AnsiConsole.MarkupLine(Markup.Escape(deviceLine));
            AnsiConsole.MarkupLine(Markup.Escape(planeLine));
            return Run(cluster, host, metrics, slots, device, backend, cfg);
        });
        return command;
    }

    private static int Run(ClusterSettings cluster, HostSettings host, Metrics.MetricsSettings metricsSettings, int devices, MoCo.Model.Training.ComputeDevice device,
        MoCo.Actors.Collectives.CollectiveBackend backend, Akka.Configuration.Config tuning)
    {
        if (devices < 1)
        {
            throw new ConfigurationError($"--devices must be at least 1, not {devices}");
        }

        var console = AnsiConsole.Console;
        var dataPlane = TrainingHost.DataPlane(cluster, multiNode: true);
        var akka = Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.stdout-loglevel = WARNING").WithFallback(tuning);
        using var metrics = new Metrics.MocoMetrics();
        using var endpoint = Metrics.MetricsEndpoint.Start(metricsSettings, metrics);
        using var akkaHost = TrainingHost.BuildNode(cluster, akka);
        akkaHost.StartAsync().GetAwaiter().GetResult();
        var system = akkaHost.Services.GetRequiredService<ActorSystem>();
        endpoint?.UseHealthChecks(() => Health.HealthChecks.Alive(system), () => Health.HealthChecks.Ready(system));
        var ended = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        // downed by the cluster (split-brain resolver, or refused by the run's director): the actor system stops
        system.WhenTerminated.ContinueWith(_ => ended.TrySetResult("this node left the cluster (downed or removed)"), TaskScheduler.Default);
        IActorRef? agent = null;
        void LeaveGracefully(string reason)
        {
            // tell the run's director first, so that it forms a new generation without this node instead of counting a failure
            try
            {
                agent?.Ask<NodeAgent.LeaveAck>(new NodeAgent.Leave(reason), TimeSpan.FromSeconds(5)).Wait(TimeSpan.FromSeconds(6));
            }
            catch (AggregateException)
            {
            }

            ended.TrySetResult(reason + ": left the cluster");
        }

        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            Task.Run(() => LeaveGracefully("interrupted (Ctrl-C)"));
        };
        System.Console.CancelKeyPress += onCancel;
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            Task.Run(() => LeaveGracefully("SIGTERM"));
        });
        try
        {
            // the agent exists before this node is Up, so the director's first question finds it
            var settings = new NodeAgentSettings(devices, host.EffectiveThreads, Math.Max(1, host.EffectiveLoaderThreads / devices),
                Path.Combine(host.RunsRoot, "node"), dataPlane)
            {
                CollectiveTimeout = TimeSpan.FromSeconds(host.CollectiveTimeoutSeconds),
                Device = device,
                Backend = backend,
                Bucketing = host.Bucketing,
            };
            agent = system.ActorOf(NodeAgentActor.Props(settings, ended), NodeAgent.Name);
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => up.TrySetResult());
            if (Task.WaitAny([up.Task, ended.Task], TimeSpan.FromSeconds(60)) < 0)
            {
                throw new ConfigurationError($"this node did not become an Up member of the cluster within 60 s; check --join and that the node is reachable");
            }

            if (ended.Task.IsCompleted)
            {
                console.MarkupLine($"[red]node refused[/]: {Markup.Escape(ended.Task.Result)}");
                return 1;
            }

            console.MarkupLine($"node [cyan]{Markup.Escape(Akka.Cluster.Cluster.Get(system).SelfAddress.ToString())}[/] joined the cluster; offering {devices} device(s)");
            var outcome = ended.Task.GetAwaiter().GetResult();
            console.MarkupLine($"node done: {Markup.Escape(outcome)}");
            return outcome.StartsWith("this node left the cluster", StringComparison.Ordinal) ? 1 : 0;
        }
        finally
        {
            System.Console.CancelKeyPress -= onCancel;
            // leaves the cluster gracefully (coordinated shutdown)
            akkaHost.StopAsync().Wait(TimeSpan.FromSeconds(30));
        }
    }
}
