using System.CommandLine;
using Akka.Actor;
using Akka.Configuration;
using MoCo.Actors.Training;
using MoCo.Host.Configuration;
using MoCo.Host.Console;
using MoCo.Host.Hosting;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MoCo.Model.Checkpoints;
using MoCo.Model.Data;
using MoCo.Model.Training;
using Spectre.Console;

namespace MoCo.Host.Commands;

/// <summary><c>moco train</c>: pretrain with the flags of the official main_moco.py.</summary>
public static class TrainCommand
{
    /// <summary>Official flag name → configuration key, where they differ from the key.</summary>
    private static readonly Dictionary<string, string> Aliases = new()
    {
        ["--batch-size"] = "batch-size",
    };

    public static Command Create()
    {
        var command = new Command("train", "Pretrain an encoder with MoCo (a run directory receives checkpoints and metrics).");
        var preset = new Option<string?>("--preset") { Description = "quickstart | cifar-small | moco-v1 | moco-v2 (default quickstart)" };
        var config = new Option<string?>("--config") { Description = "A HOCON file instead of a preset" };
        var runDir = new Option<string?>("--run-dir") { Description = "Run directory (default runs/<run id>)" };
        var resume = new Option<string?>("--resume") { Description = "A checkpoint file, or a run directory whose latest valid checkpoint is used" };
        var augPlus = new Option<bool>("--aug-plus") { Description = "MoCo v2 augmentation (same as --augmentation v2)" };
        var printEvery = new Option<int>("--print-freq") { Description = "Print a line every n steps", DefaultValueFactory = _ => 10 };
        var continueRun = new Option<bool>("--continue")
        {
            Description = "With --run-dir: resume the run in that directory from its latest valid checkpoint, or start a new run there when it holds none; "
                + "when that run has already completed, say so and wait for SIGTERM (for a Kubernetes pod that restarts)",
        };
        var devices = new Option<int>("--devices") { Description = "In-process workers, one per device slot (at most --bn-splits; default 1)", DefaultValueFactory = _ => 1 };
        var runIdOption = new Option<string?>("--run-id") { Description = "The run's id (default: a new one, or the resumed checkpoint's); every trainer of a run, the standby too, names the same" };
        var standby = new Option<bool>("--standby")
        {
            Description = "Join the cluster of a running trainer (--seed-nodes) and stand by: when the process running the run's director is lost, "
                + "this one takes the run over from the journal (PostgreSQL) and the workers that outlived it. Needs --run-id",
        };
        command.Options.Add(preset);
        command.Options.Add(config);
        command.Options.Add(runDir);
        command.Options.Add(resume);
        command.Options.Add(continueRun);
        command.Options.Add(augPlus);
        command.Options.Add(printEvery);
        command.Options.Add(devices);
        command.Options.Add(runIdOption);
        command.Options.Add(standby);
        var runOptions = AddSectionOptions<RunConfig>(command, "moco.run");
        var hostOptions = AddSectionOptions<HostSettings>(command, "moco.host", exclude: ["runs-root"]);
        var clusterOptions = AddSectionOptions<ClusterSettings>(command, "moco.cluster", exclude: ["secret"]); // a secret on the command line shows in ps: MOCO_CLUSTER_SECRET only
        // a connection string holds a password, which a flag would show to every `ps`: MOCO_JOURNAL_CONNECTION_STRING or a file only
        var journalOptions = AddSectionOptions<JournalSettings>(command, "moco.journal", exclude: ["connection-string"]);
        command.SetAction(parse =>
        {
            var (cfg, source) = Presets.Load(parse.GetValue(preset), parse.GetValue(config));
            cfg = Presets.WithEnvironment(cfg, Environment.GetEnvironmentVariables());
            var runValues = Collect(parse, runOptions);
            if (parse.GetValue(augPlus))
            {
                runValues["augmentation"] = "v2";
            }
            cfg = Presets.WithOverrides(cfg, "moco.run", runValues);
            cfg = Presets.WithOverrides(cfg, "moco.host", Collect(parse, hostOptions));
            cfg = Presets.WithOverrides(cfg, "moco.cluster", Collect(parse, clusterOptions));
            cfg = Presets.WithOverrides(cfg, "moco.journal", Collect(parse, journalOptions));
            SettingsReader.CheckSections(cfg, "moco", Presets.Sections, source);
            var run = SettingsReader.Read<RunConfig>(cfg, "moco.run", source);
            var host = SettingsReader.Read<HostSettings>(cfg, "moco.host", source).Validate();
            var cluster = SettingsReader.Read<ClusterSettings>(cfg, "moco.cluster", source).Validate();
            var journal = SettingsReader.Read<JournalSettings>(cfg, "moco.journal", source).Validate();
            var metricsSettings = SettingsReader.Read<Metrics.MetricsSettings>(cfg, "moco.metrics", source);
            var dataPlane = SettingsReader.Read<DataPlaneSettings>(cfg, "moco.data-plane", source);
            var tuning = cfg; // the preset's akka section (split-brain resolver, ...) tunes the actor system
            var resumeFrom = parse.GetValue(resume);
            bool continuing = parse.GetValue(continueRun);
            if (continuing)
            {
                resumeFrom = ContinueFrom(parse.GetValue(runDir), resumeFrom);
            }

            var role = new TrainerRole(parse.GetValue(runIdOption), parse.GetValue(standby));
            return Train(run, host, cluster, journal, metricsSettings, dataPlane, tuning, runValues, parse.GetValue(runDir), resumeFrom, parse.GetValue(printEvery), parse.GetValue(devices), continuing, role);
        });
        return command;
    }

    /// <summary>
    /// Trains through the actor system, hosted by Akka.Hosting (<see cref="TrainingHost"/>): a one-node cluster by
    /// default, the run recorder as a cluster singleton journaling to the run directory's <c>journal.db</c> (or
    /// PostgreSQL), a <see cref="TrainingDirectorActor"/> with <paramref name="devices"/> workers, and progress printed by
    /// a <see cref="TrainingProgressActor"/>.
    /// </summary>
    private static int Train(RunConfig run, HostSettings host, ClusterSettings cluster, JournalSettings journal, Metrics.MetricsSettings metricsSettings, DataPlaneSettings dataPlane, Config tuning,
        IReadOnlyDictionary<string, string> flags, string? runDir, string? resume, int printEvery, int devices, bool continuing = false, TrainerRole? role = null)
    {
        var console = AnsiConsole.Console;
        role ??= new TrainerRole(null, false);
        role.Check(cluster, journal, resume);
        string runId;
        string? resumeFrom = null;
        if (resume is not null)
        {
            CheckpointInfo checkpoint;
            (checkpoint, runDir) = OpenResume(resume, console);
            runId = checkpoint.Header.RunId;
            if (role.RunId is { } named && named != runId)
            {
                throw new ConfigurationError($"--run-id {named}, but the checkpoint {checkpoint.Path} belongs to run {runId}");
            }

            resumeFrom = checkpoint.Path;
            // --continue is declarative (a pod's configuration is the run it wants): every key of its configuration
            // counts as given, so a changed key is applied where a resumed run allows it and refused by name where
            // not, never ignored; --resume takes only what the command line gives again
            var given = continuing ? SettingsReader.Keys<RunConfig>().Keys : flags.Keys;
            var saved = RunConfig.FromJson(checkpoint.Header.ConfigJson);
            // init-sha256 is filled in when a run starts: a configuration that leaves it empty means the run's own
            run = ResumedConfig(saved, run with
            {
                Init = run.Init.Length == 0 ? "" : Path.GetFullPath(run.Init),
                InitSha256 = run.InitSha256.Length == 0 ? saved.InitSha256 : run.InitSha256,
            }, given);
        }
        else
        {
            runId = role.RunId ?? $"run-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..4]}";
            runDir ??= Path.Combine(host.RunsRoot, runId);
            run = WithInit(run, console);
        }
        run.Validate();
        // other processes may join when this node listens on a known port or waits for more workers
        bool elastic = cluster.Port != 0 || cluster.MinWorkers > 1 || role.Standby;
        cluster.RequireCredentials(elastic);
        console.MarkupLine(Markup.Escape(RemotingLine(cluster)));
        var (device, deviceLine) = DeviceChoice.Choose(host.Device, Math.Max(1, devices));
        var (backend, planeLine) = DataPlaneChoice.Choose(dataPlane, device);
        console.MarkupLine(Markup.Escape(deviceLine));
        if (elastic || device == MoCo.Model.Training.ComputeDevice.Cuda)
        {
            console.MarkupLine(Markup.Escape(planeLine));
        }

        if (elastic && cluster.ProtectionWarning() is { } unprotected)
        {
            console.MarkupLine($"[yellow]{Markup.Escape(unprotected)}[/]");
        }

        CheckNumerics(run, host, device, Math.Max(1, devices), console);
        if (device == MoCo.Model.Training.ComputeDevice.Cpu
            && MoCo.Model.Diagnostics.CpuDescription.Current().EmulatedBf16Warning(MoCo.Model.Nn.PrecisionNames.Parse(run.Precision)) is { } emulated)
        {
            console.MarkupLine($"[yellow]{Markup.Escape(emulated)}[/]");
        }

        Directory.CreateDirectory(runDir!);
        File.WriteAllText(Path.Combine(runDir!, "config.json"), run.ToJson());
        console.MarkupLine($"run directory: [cyan]{Markup.Escape(Path.GetFullPath(runDir!))}[/]");
        var data = DataCommandHelpers.OpenData(run.Data, run, console, host.ImageCacheBytes);
        if (data.Report.Skipped > 0)
        {
            console.MarkupLine($"  [yellow]{Markup.Escape(data.Report.ToString())}[/]");
        }
        var settings = new TrainingSettings(run, runId, runDir!, data, devices)
        {
            Threads = host.EffectiveThreads,
            LoaderThreads = host.LoaderThreadsPerWorker(devices),
            KnnAtStart = host.KnnAtStart,
            ResumeFrom = resumeFrom,
            Elastic = elastic,
            Device = device,
            Backend = backend,
            CollectiveTimeout = TimeSpan.FromSeconds(host.CollectiveTimeoutSeconds),
            Bucketing = host.Bucketing,
            NumericsCheck = host.NumericsCheck,
            TensorBoard = host.Tensorboard,
            MinWorkers = cluster.MinWorkers,
            DataPlane = TrainingHost.DataPlane(cluster, elastic),
            Node = elastic ? $"{cluster.PublicHostnameOrHostname()}:{cluster.Port}" : Environment.MachineName,
        }.Validate();

        using var metrics = new Metrics.MocoMetrics();
        // /metrics, /alive and /ready (moco.metrics.port; 0: none), up before the slow parts so probes see the process
        using var endpoint = Metrics.MetricsEndpoint.Start(metricsSettings, metrics);
        var runHealth = new Health.RunHealth(runId);
        Logging.RunLogContext.Begin(runId);
        using var akkaHost = TrainingHost.Build(cluster, journal, runId, runDir!, tuning, runHealth);
        akkaHost.StartAsync().GetAwaiter().GetResult();
        var system = akkaHost.Services.GetRequiredService<ActorSystem>();
        endpoint?.UseHealthChecks(akkaHost.Services);
        TrainingHost.AwaitMemberUp(system, TimeSpan.FromSeconds(60));
        if (elastic && cluster.Port == 0 && Akka.Cluster.Cluster.Get(system).SelfAddress.Port is int bound)
        {
            // a standby on a free port: its workers' node is named by the port remoting bound
            settings = settings with { Node = $"{cluster.PublicHostnameOrHostname()}:{bound}" };
        }
        var recorder = akkaHost.Services.GetRequiredService<ActorRegistry>().Get<TrainingHost.RunRecorderKey>();
        object final;
        var completion = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        var director = system.ActorSelection(DirectorSingleton.Path);
        // never wait on a system that is gone (downed, shut down by a signal): the run's outcome is then unknown
        system.WhenTerminated.ContinueWith(_ => completion.TrySetResult("the actor system stopped before the run ended"), TaskScheduler.Default);
        // Ctrl-C and SIGTERM (kubelet, systemd, kill) interrupt: stop at the end of the chunk, checkpoint, resumable; a
        // standby whose director never started has nothing to interrupt and just leaves
        using var signals = new StopSignals { OnStop = _ => DirectorSingleton.Interrupt(director, role.Standby, () => completion.TrySetResult(new StandbyStopped())) };
        try
        {
            object Drive(ProgressContext? live)
            {
                var progress = system.ActorOf(TrainingProgressActor.Props(console, run, printEvery, completion, live, metrics, runHealth), "progress");
                if (elastic)
                {
                    system.ActorOf(MoCo.Actors.Nodes.GoneProcessDowning.Props(), "gone-process-downing");
                    // every member proves it holds the cluster's secret to the run's director, a trainer too (it offers no devices)
                    system.ActorOf(MoCo.Actors.Nodes.NodeAgentActor.Props(new MoCo.Actors.Nodes.NodeAgentSettings(0, 1, 1, runDir!, settings.DataPlane)), MoCo.Actors.Nodes.NodeAgent.Name);
                }

                // the director runs as a cluster singleton on the trainer role: in this process, or (a standby) once the
                // process running it is lost
                DirectorSingleton.Start(system, TrainingDirectorActor.Props(settings, progress, recorder));
                if (role.Standby)
                {
                    console.MarkupLine($"standing by for run [cyan]{Markup.Escape(runId)}[/]: this trainer takes the run over when the process running its director is lost");
                }

                return completion.Task.GetAwaiter().GetResult();
            }

            // a live display on a terminal; plain lines when stdout is redirected (logs, CI)
            final = console.Profile.Capabilities.Interactive && !System.Console.IsOutputRedirected
                ? console.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                        new RemainingTimeColumn(), new SpinnerColumn())
                    .Start(Drive)
                : Drive(null);
        }
        finally
        {
            signals.OnStop = null; // the director is gone
            // leaves the cluster and stops the actor system (coordinated shutdown)
            akkaHost.StopAsync().Wait(TimeSpan.FromSeconds(30));
        }

        switch (final)
        {
            case TrainingDirector.RunCompleted completed:
                console.MarkupLine($"[bold green]done[/]: {completed.GlobalStep} steps; metrics in {Markup.Escape(Path.Combine(runDir!, MetricsCsv.FileName))}");
                return ExitCodes.Success;
            case TrainingDirector.Interrupted interrupted:
                console.MarkupLine($"[yellow]interrupted[/] at step {interrupted.GlobalStep}: continue with [bold]moco train --resume {Markup.Escape(runDir!)}[/]"
                    + (interrupted.LastCheckpoint is null ? " (no checkpoint yet: it starts over)" : ""));
                return ExitCodes.Interrupted;
            case StandbyStopped:
                console.MarkupLine("standby stopped before it took the run over");
                return ExitCodes.Success;
            case TrainingDirector.AlreadyFinished done when role.Standby:
                console.MarkupLine($"run {Markup.Escape(done.RunId)} ended under another trainer ({(done.Completed ? "completed" : "failed")}); the standby has nothing to take over");
                return done.Completed ? ExitCodes.Success : ExitCodes.RunFailed;
            case TrainingDirector.AlreadyFinished { Completed: true } done when continuing && !host.IdleWhenComplete:
                // a Job's pod (k8s/job): the run is done, so is the pod; an idle pod would hold the Job open forever
                console.MarkupLine($"[bold green]run {Markup.Escape(done.RunId)} is complete[/] (its journal says so); nothing to train (idle-when-complete = false: exiting)");
                return ExitCodes.Success;
            case TrainingDirector.AlreadyFinished { Completed: true } done when continuing:
                // a restarted StatefulSet pod must neither start a new run nor exit (the kubelet would restart it again)
                endpoint?.UseIdle("the run is complete");
                console.MarkupLine($"[bold green]run {Markup.Escape(done.RunId)} is complete[/] (its journal says so); nothing to train. "
                    + "Waiting for SIGTERM or Ctrl-C: scale the trainer to 0 or delete it");
                signals.Wait();
                return ExitCodes.Success;
            case TrainingDirector.AlreadyFinished already:
                console.MarkupLine($"[red]nothing to resume[/]: {Markup.Escape(already.Reason)}");
                return ExitCodes.RunFailed;
            case TrainingDirector.RunFailed failed:
                console.MarkupLine($"[red]run failed[/]{(failed.Recorded ? " (recorded in the journal)" : "")}: {Markup.Escape(failed.Reason)}");
                return ExitCodes.RunFailed;
            default:
                console.MarkupLine($"[red]run ended unexpectedly[/]: {Markup.Escape(final.ToString() ?? "")}");
                return ExitCodes.RunFailed;
        }
    }

    /// <summary>A standby that was stopped (a signal) before it took a run over.</summary>
    private sealed record StandbyStopped;

    /// <summary>What remoting does in this process, for the first lines of <c>moco train</c> and <c>moco node</c>.</summary>
    internal static string RemotingLine(ClusterSettings cluster)
    {
        if (!cluster.Tls)
        {
            return $"remoting: plain TCP on {cluster.Hostname} (a single process; other processes need the cluster's certificate and secret)";
        }

        using var certificate = ClusterCertificate.Load(cluster.Certificate);
        return $"remoting: TLS, mutual authentication pinned to the cluster certificate {certificate.Thumbprint} (valid until {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}"
            + (ClusterCertificate.ExpiresSoon(certificate) ? $", WITHIN {ClusterCertificate.WarnDays} DAYS: make a new one with `moco cert`" : "") + ")";
    }

    /// <summary>
    /// The numerical self-check of the run's network at one worker's batch share and threads, before anything is
    /// written (the workers find its report in this process and do not repeat it).
    /// </summary>
    /// <exception cref="MoCo.Model.Diagnostics.NumericsCheckFailedException">This machine computes a layer wrongly.</exception>
    private static void CheckNumerics(RunConfig run, HostSettings host, MoCo.Model.Training.ComputeDevice device, int devices, IAnsiConsole console)
    {
        if (!host.NumericsCheck)
        {
            console.MarkupLine("[yellow]numerics: not checked (numerics-check = false)[/]");
            return;
        }

        TorchSharp.torch.set_num_threads(Math.Max(1, host.EffectiveThreads / devices));
        var report = MoCo.Model.Diagnostics.NumericsGate.Ensure(run.Encoder, run.ComputePrecision, run.ImageSize,
            run.BatchSize / devices, MoCo.Model.Training.ComputeDevices.For(device, 0));
        console.MarkupLine($"numerics: {Markup.Escape(report.Summary)}");
    }

    /// <summary>
    /// A resumed run keeps its saved configuration; the keys given again on the command line or in the environment
    /// apply only where <see cref="RunConfig.RunDefinition"/> allows a change (epochs, data, kNN monitor, checkpoint
    /// cadence). Giving a key that defines the run with another value is an error that names it.
    /// </summary>
    /// <summary>
    /// A new run with <see cref="RunConfig.Init"/>: the file's full path and SHA-256 go into the run's configuration
    /// (so every worker, a resumed run and a replay read the same weights, or fail naming the difference), after the
    /// weights are read and found to fit the run's network.
    /// </summary>
    private static RunConfig WithInit(RunConfig run, IAnsiConsole console)
    {
        if (run.Init.Length == 0)
        {
            return run;
        }
        var path = Path.GetFullPath(run.Init);
        if (!File.Exists(path))
        {
            throw new ConfigurationError($"--init {run.Init}: no such file");
        }
        string sha;
        using (var file = File.OpenRead(path))
        {
            sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(file));
        }
        if (run.InitSha256.Length != 0 && run.InitSha256 != sha)
        {
            throw new ConfigurationError($"--init {path} has SHA-256 {sha}, not the {run.InitSha256} that init-sha256 asks for");
        }
        using var weights = Model.Checkpoints.EncoderWeights.Read(path);
        Model.Checkpoints.EncoderWeights.EnsureFits(weights.Shape, run.Encoder, path);
        var shape = weights.Shape;
        bool head = shape.HeadDim == run.MocoDim && shape.Mlp == run.Mlp;
        console.MarkupLine(Markup.Escape($"init: both encoders start from {path} ({weights.LayoutName}, sha256 {sha[..16]}…), "
            + (head ? "head included" : "backbone only (the head's shape differs: it starts seeded)")));
        return run with { Init = path, InitSha256 = sha };
    }

    internal static RunConfig ResumedConfig(RunConfig saved, RunConfig requested, IEnumerable<string> givenKeys)
    {
        var savedNode = System.Text.Json.Nodes.JsonNode.Parse(saved.ToJson())!.AsObject();
        var requestedNode = System.Text.Json.Nodes.JsonNode.Parse(requested.ToJson())!.AsObject();
        var refused = new List<string>();
        foreach (var key in givenKeys.Where(requestedNode.ContainsKey))
        {
            if (System.Text.Json.Nodes.JsonNode.DeepEquals(savedNode[key], requestedNode[key]))
            {
                continue;
            }

            if (!RunConfig.ChangeableOnResume.Contains(key))
            {
                refused.Add($"{key} to {requestedNode[key]?.ToJsonString()} (the run has {savedNode[key]?.ToJsonString()})");
                continue;
            }

            savedNode[key] = requestedNode[key]?.DeepClone();
        }

        if (refused.Count > 0)
        {
            throw new ConfigurationError($"a resumed run keeps what defines it: cannot change {string.Join("; ", refused)}. "
                + $"On resume only {string.Join(", ", RunConfig.ChangeableOnResume)} may change");
        }

        return RunConfig.FromJson(savedNode.ToJsonString());
    }

    /// <summary>
    /// What <c>--continue</c> resumes: the run directory when it holds checkpoint files, else nothing (a new run starts
    /// there). The files are verified by <see cref="OpenResume"/>, which names and skips damaged ones; a directory whose
    /// every checkpoint is damaged is an error rather than a silent new run over it.
    /// </summary>
    internal static string? ContinueFrom(string? runDir, string? resume)
    {
        if (runDir is null)
        {
            throw new ConfigurationError("--continue needs --run-dir: the directory of the run to continue (or to start)");
        }

        if (resume is not null)
        {
            throw new ConfigurationError("--continue and --resume exclude each other: --continue resumes --run-dir when it holds a checkpoint");
        }

        return Directory.Exists(runDir) && new CheckpointDirectory(runDir).List().Any() ? runDir : null;
    }

    private static (CheckpointInfo Checkpoint, string RunDir) OpenResume(string resume, IAnsiConsole console)
    {
        if (Directory.Exists(resume))
        {
            var runId = ReadRunId(resume);
            var latest = CheckpointDirectory.Latest(resume, runId);
            foreach (var skipped in latest.Skipped)
            {
                console.MarkupLine($"[yellow]skipped checkpoint[/] {Markup.Escape(skipped.Path)}: {Markup.Escape(skipped.Reason)}");
            }
            if (latest.Found is null)
            {
                throw new ConfigurationError($"no valid checkpoint of run {runId} in {resume}");
            }
            return (latest.Found, resume);
        }
        if (!File.Exists(resume))
        {
            throw new ConfigurationError($"--resume {resume}: no such checkpoint file or run directory");
        }
        var checkpoint = CheckpointFile.Verify(resume);
        var dir = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(resume)))!;
        return (checkpoint, dir);
    }

    /// <summary>
    /// The run id of a run directory, from the newest of its checkpoints that passes verification; files that fail
    /// (refused, or unreadable) are passed over as <see cref="CheckpointDirectory.Latest(string)"/> passes them over.
    /// </summary>
    internal static string ReadRunId(string runDir)
    {
        foreach (var path in new CheckpointDirectory(runDir).List().Reverse())
        {
            try
            {
                return CheckpointFile.Verify(path).Header.RunId;
            }
            catch (Exception e) when (e is CheckpointRejectedException or IOException or UnauthorizedAccessException)
            {
            }
        }
        throw new ConfigurationError($"{runDir} holds no valid checkpoint");
    }

    internal static Dictionary<string, Option> AddSectionOptions<T>(Command command, string section, string[]? exclude = null)
    {
        var options = new Dictionary<string, Option>();
        foreach (var (key, type) in SettingsReader.Keys<T>())
        {
            if (exclude?.Contains(key) == true)
            {
                continue;
            }
            Option option = type == typeof(bool)
                ? new Option<string?>("--" + key) { Arity = ArgumentArity.ZeroOrOne, Description = $"{section}.{key} (true/false)" }
                : type == typeof(IReadOnlyList<int>)
                    ? new Option<int[]?>("--" + key) { AllowMultipleArgumentsPerToken = true, Description = $"{section}.{key} (list)" }
                    : new Option<string?>("--" + key) { Description = $"{section}.{key}" };
            command.Options.Add(option);
            options[key] = option;
        }
        return options;
    }

    internal static Dictionary<string, string> Collect(ParseResult parse, Dictionary<string, Option> options)
    {
        var values = new Dictionary<string, string>();
        foreach (var (key, option) in options)
        {
            var result = parse.GetResult(option);
            if (result is null || result.Implicit)
            {
                continue;
            }
            if (option is Option<int[]?> list)
            {
                values[key] = "[" + string.Join(", ", parse.GetValue(list) ?? []) + "]";
            }
            else
            {
                var text = parse.GetValue((Option<string?>)option);
                values[key] = text ?? "true"; // a bare boolean flag
            }
        }
        return values;
    }
}

/// <summary>Which run a <c>moco train</c> process serves and whether it stands by (<c>--run-id</c>, <c>--standby</c>).</summary>
/// <param name="RunId">The run's id when given.</param>
/// <param name="Standby">Whether the process joins a running trainer's cluster and waits to take its run over.</param>
internal sealed record TrainerRole(string? RunId, bool Standby)
{
    /// <summary>Refuses a role the settings cannot serve, by name.</summary>
    public void Check(ClusterSettings cluster, JournalSettings journal, string? resume)
    {
        if (RunId is { } id && (id.Length is 0 or > 128 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ConfigurationError($"--run-id '{id}': use 1 to 128 letters, digits, '-', '_' or '.'");
        }

        if (!Standby)
        {
            if (cluster.SeedAddresses().Count > 0)
            {
                throw new ConfigurationError("moco train --seed-nodes joins the cluster of another trainer, where the run's director already runs: "
                    + "that makes this process a standby, which takes the run over when that trainer is lost; say so with --standby (with --run-id "
                    + "and the journal in PostgreSQL), or leave out --seed-nodes to start a run of its own");
            }

            return;
        }

        if (RunId is null && resume is null)
        {
            throw new ConfigurationError("--standby needs --run-id: the run this trainer takes over when the trainer running it is lost");
        }

        if (cluster.SeedAddresses().Count == 0)
        {
            throw new ConfigurationError("--standby needs the running trainer's cluster to join: --seed-nodes HOST:PORT (or moco.cluster.seed-nodes)");
        }

        if (string.IsNullOrWhiteSpace(journal.ConnectionString))
        {
            throw new ConfigurationError("--standby needs the run's journal in PostgreSQL (moco.journal.connection-string, or MOCO_JOURNAL_CONNECTION_STRING): "
                + "a SQLite journal is a file in one trainer's run directory, where a standby would start a second history of the run");
        }
    }
}
