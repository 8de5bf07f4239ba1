using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MoCo.Actors.Persistence;
using MoCo.Actors.Run;
using MoCo.Host.History;
using Spectre.Console;

namespace MoCo.Host.Commands;

/// <summary>
/// <c>moco runs</c>, <c>moco history</c> and <c>moco replay</c>: read a run journal (a run directory holding
/// <see cref="RunJournal.DatabaseFileName"/>, the SQLite file itself, or a PostgreSQL connection string) and never write it.
/// </summary>
public static class HistoryCommands
{
    private const string JournalHelp =
        "A run directory (holding " + RunJournal.DatabaseFileName + "), a journal file, a PostgreSQL connection string (Host=... or postgres://...), "
        + "or env:NAME to read the connection string from the environment variable NAME (so that its password is on no command line)";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary><c>moco runs JOURNAL</c>: one line per run.</summary>
    public static Command CreateRuns()
    {
        var command = new Command("runs", "List the runs of a journal: id, status, epochs, last step, start and finish.");
        var journal = JournalArgument();
        command.Arguments.Add(journal);
        command.SetAction(async (parse, cancellation) =>
        {
            var console = ConsoleFor(parse);
            await using var history = RunHistory.Open(ResolveJournal(parse.GetValue(journal)!));
            var table = new Table().AddColumns("run", "status", "epochs", "last step", "started (UTC)", "finished (UTC)");
            foreach (var id in await history.ListRunIdsAsync(cancellation))
            {
                var state = await history.ReplayAsync(id, cancellation);
                table.AddRow(Markup.Escape(id), state.Status.ToString(), state.Epochs.Count.ToString(CultureInfo.InvariantCulture),
                    state.LastStep.ToString(CultureInfo.InvariantCulture), Time(state.StartedUtc), Time(state.FinishedUtc));
            }

            console.Write(table);
            return 0;
        });
        return command;
    }

    /// <summary><c>moco history JOURNAL [--run ID] [--json]</c>: a run's generations, membership, epochs, checkpoints and failures.</summary>
    public static Command CreateHistory()
    {
        var command = new Command("history", "Show a run's timeline: generations and membership, epochs with metrics, checkpoints, failures.");
        var journal = JournalArgument();
        var run = RunOption();
        var json = new Option<bool>("--json") { Description = "Write the timeline as JSON instead of tables" };
        command.Arguments.Add(journal);
        command.Options.Add(run);
        command.Options.Add(json);
        command.SetAction(async (parse, cancellation) =>
        {
            var timeline = await ReadTimelineAsync(ResolveJournal(parse.GetValue(journal)!), parse.GetValue(run), cancellation);
            if (parse.GetValue(json))
            {
                await parse.InvocationConfiguration.Output.WriteLineAsync(JsonSerializer.Serialize(timeline, Json));
            }
            else
            {
                WriteTables(ConsoleFor(parse), timeline);
            }

            return 0;
        });
        return command;
    }

    /// <summary>
    /// <c>moco replay JOURNAL [--run ID] --out DIR</c>: metrics.csv and plots rebuilt from the journal alone;
    /// <c>moco replay RUN_DIR --verify [--from STEP] [--to STEP]</c>: the steps re-executed and compared with the journal
    /// (<see cref="ReplayVerifier"/>); exit code 0 identical, 10 within tolerance, 11 diverged.
    /// </summary>
    public static Command CreateReplay()
    {
        var command = new Command("replay",
            "Rebuild a run's metrics.csv and plots from the journal (--out), or re-execute its steps and compare every loss and state digest with the journal (--verify).");
        var journal = JournalArgument();
        var run = RunOption();
        var output = new Option<string?>("--out") { Description = "Output directory for metrics.csv and the plots (created if missing)" };
        var verify = new Option<bool>("--verify")
        {
            Description = "Re-execute the steps from the newest checkpoint at or before --from and compare each loss and chunk digest with the journal " +
                "(JOURNAL must be the run directory: its checkpoints/ are read). Exit code: 0 identical, 10 within tolerance, 11 diverged",
        };
        var from = new Option<long?>("--from") { Description = "First step to verify (default 0: from the seeded start)" };
        var to = new Option<long?>("--to") { Description = "Stop before this step (default: the last recorded step)" };
        var tolerance = new Option<double>("--tolerance")
        {
            Description = "Largest relative loss difference called within tolerance",
            DefaultValueFactory = _ => ReplayOptions.DefaultTolerance,
        };
        var data = new Option<string?>("--data") { Description = "Where the run's data set is, when not where it was read during training" };
        var threads = new Option<int?>("--threads") { Description = "Torch threads (default: the recorded ones; other counts may change the last bits)" };
        var world = new Option<int?>("--world-size") { Description = "Replicas replayed in this process (default: the recorded world size)" };
        var plane = new Option<string?>("--data-plane") { Description = "in-process | tcp-ring (over loopback): how the replicas sum (default: as recorded)" };
        var verifyJournal = new Option<string?>("--journal")
        {
            Description = "With --verify: the journal to compare with when it is not the run directory's " + RunJournal.DatabaseFileName
                + " (a run journaled in PostgreSQL: its connection string, or env:NAME to read it from the environment variable NAME)",
        };
        plane.AcceptOnlyFromAmong(StepsRecordedPlanes.InProcess, StepsRecordedPlanes.TcpRing);
        command.Arguments.Add(journal);
        foreach (var option in new Option[] { run, output, verify, from, to, tolerance, data, threads, world, plane, verifyJournal })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, cancellation) =>
        {
            var console = ConsoleFor(parse);
            string source = ResolveJournal(parse.GetValue(journal)!);
            string? journalElsewhere = parse.GetValue(verifyJournal) is { } given ? ResolveJournal(given) : null;
            if (journalElsewhere is not null && !parse.GetValue(verify))
            {
                throw new HistoryError("--journal goes with --verify (JOURNAL itself names the journal to rebuild metrics from)");
            }

            if (parse.GetValue(verify))
            {
                return await VerifyAsync(console, source, journalElsewhere, parse.GetValue(run),
                    new ReplayOptions(parse.GetValue(from), parse.GetValue(to), parse.GetValue(tolerance), parse.GetValue(data),
                        parse.GetValue(threads), parse.GetValue(world), parse.GetValue(plane)), cancellation);
            }

            string directory = parse.GetValue(output)
                ?? throw new HistoryError("moco replay needs --out DIR (rebuild metrics.csv and plots) or --verify (re-execute the steps)");
            var timeline = await ReadTimelineAsync(source, parse.GetValue(run), cancellation);
            foreach (var file in MetricsReplay.Write(timeline, directory))
            {
                console.MarkupLine($"wrote [cyan]{Markup.Escape(file)}[/]");
            }

            return 0;
        });
        return command;
    }

    private static async Task<int> VerifyAsync(IAnsiConsole console, string runDir, string? journal, string? runId, ReplayOptions options, CancellationToken cancellation)
    {
        if (RunJournal.IsPostgreSqlConnectionString(runDir) || !Directory.Exists(runDir))
        {
            throw new HistoryError($"--verify needs the run directory (its checkpoints/, and its journal unless --journal names another), not '{RunJournal.Redact(runDir)}'; " +
                "copy the run directory from the machine that trained it, and give a run journaled in PostgreSQL with --journal CONNECTION_STRING (or --journal env:NAME)");
        }

        if (options.Tolerance is not (> 0 and < 1))
        {
            throw new HistoryError($"--tolerance {options.Tolerance.ToString(CultureInfo.InvariantCulture)} is not a relative difference between 0 and 1");
        }

        RecordedSteps recorded;
        if (journal is null && !File.Exists(Path.Combine(runDir, RunJournal.DatabaseFileName)))
        {
            throw new HistoryError($"No run journal in '{runDir}' (expected the file {RunJournal.DatabaseFileName}); "
                + "for a run journaled in PostgreSQL name it: --journal CONNECTION_STRING, or --journal env:NAME");
        }

        string source = journal ?? runDir;
        await using (var history = RunHistory.Open(source))
        {
            var id = SelectRun(source, await history.ListRunIdsAsync(cancellation), runId);
            recorded = RecordedSteps.FromEvents(await history.ReadEventsAsync(id, cancellation));
        }

        var cpu = MoCo.Model.Diagnostics.CpuDescription.Current();
        console.MarkupLine(Markup.Escape($"verifying run {recorded.RunId}: the journal records steps 0 to {recorded.EndStep - 1} " +
            $"and {recorded.DigestsAt.Count} state digest(s); this machine: {cpu.Model}, {string.Join(" ", cpu.VectorExtensions)}" +
            (cpu.IsaLimit is null ? string.Empty : $", DNNL_MAX_CPU_ISA={cpu.IsaLimit}")));
        var report = ReplayVerifier.Verify(recorded, runDir, options, line => console.MarkupLine(Markup.Escape(line)));
        string replayed = report.EndStep > report.FirstStep
            ? $"replayed steps {report.FirstStep} to {report.EndStep - 1}"
            : $"replayed no step (the start already differs from the journal)";
        console.MarkupLine(Markup.Escape($"{replayed} from {report.StartedFrom} " +
            $"with {report.WorldSize} replica(s) in this process ({report.DataPlane}) and {report.Threads} torch thread(s); loss tolerance " +
            options.Tolerance.ToString("G3", CultureInfo.InvariantCulture) + " relative"));
        var table = new Table().AddColumns("steps", "verdict", "evidence");
        foreach (var span in report.Spans)
        {
            string steps = span.EndStep <= span.FirstStep ? $"start ({span.FirstStep})" : span.EndStep - span.FirstStep == 1
                ? Num(span.FirstStep) : $"{Num(span.FirstStep)}-{Num(span.EndStep - 1)}";
            string verdict = span.Verdict switch
            {
                ReplayVerdict.Identical => "[green]identical[/]",
                ReplayVerdict.WithinTolerance => "[yellow]within tolerance[/]",
                _ => "[red]diverged[/]",
            };
            table.AddRow(Markup.Escape(steps), verdict, Markup.Escape(span.Detail));
        }

        console.Write(table);
        foreach (var note in report.Notes)
        {
            console.MarkupLine(Markup.Escape("note: " + note));
        }

        console.MarkupLine(report.Verdict switch
        {
            ReplayVerdict.Identical => "verdict: [green]identical[/] (exit code 0)",
            ReplayVerdict.WithinTolerance => "verdict: [yellow]within tolerance[/], not bit for bit (exit code 10)",
            _ => "verdict: [red]diverged[/] (exit code 11)",
        });
        return report.ExitCode;
    }

    /// <summary>
    /// The timeline of run <paramref name="runId"/>, or of the journal's only run when <paramref name="runId"/> is null.
    /// </summary>
    /// <param name="journal">The run directory, journal file or connection string.</param>
    /// <param name="runId">The run, or null.</param>
    /// <param name="cancellation">Stops waiting for the journal.</param>
    /// <exception cref="HistoryError">No such run; or no run given and the journal holds none or several.</exception>
    /// <exception cref="FileNotFoundException">There is no SQLite journal there.</exception>
    public static async Task<RunTimeline> ReadTimelineAsync(string journal, string? runId, CancellationToken cancellation)
    {
        await using var history = RunHistory.Open(journal);
        var ids = await history.ListRunIdsAsync(cancellation);
        var id = SelectRun(journal, ids, runId);
        return RunTimeline.FromEvents(await history.ReadEventsAsync(id, cancellation));
    }

    /// <summary>Picks the run to show: the one named, or the only one.</summary>
    /// <param name="journal">The journal, for messages.</param>
    /// <param name="ids">The runs it holds.</param>
    /// <param name="runId">The run asked for, or null.</param>
    /// <exception cref="HistoryError">The run cannot be chosen; the message says why and lists the runs.</exception>
    public static string SelectRun(string journal, IReadOnlyList<string> ids, string? runId)
    {
        var where = RunJournal.IsPostgreSqlConnectionString(journal) ? "the PostgreSQL journal" : $"'{journal}'";
        if (runId is not null)
        {
            return ids.Contains(runId, StringComparer.Ordinal)
                ? runId
                : throw new HistoryError(ids.Count == 0
                    ? $"No run '{runId}' in {where}: it holds no runs."
                    : $"No run '{runId}' in {where}; its runs: {string.Join(", ", ids)}.");
        }

        return ids.Count switch
        {
            0 => throw new HistoryError($"{where} holds no runs."),
            1 => ids[0],
            _ => throw new HistoryError($"{where} holds {ids.Count} runs ({string.Join(", ", ids)}); choose one with --run ID."),
        };
    }

    private static void WriteTables(IAnsiConsole console, RunTimeline t)
    {
        console.MarkupLine($"run [bold]{Markup.Escape(t.RunId)}[/]: {t.Status}, last step {t.LastStep}, " +
            $"started {Time(t.StartedUtc)}, finished {Time(t.FinishedUtc)}");

        var generations = new Table().Title("generations").AddColumns("#", "generation", "step", "workers (rank order)");
        foreach (var g in t.Generations)
        {
            generations.AddRow(Num(g.Sequence), Num(g.Generation), Num(g.Step),
                Markup.Escape(string.Join(", ", g.Ranks.Select(w => $"{w.WorkerId} ({w.Node}, {w.Device})"))));
        }

        var membership = new Table().Title("membership").AddColumns("#", "change", "worker", "node", "device", "reason");
        foreach (var m in t.Membership)
        {
            membership.AddRow(Num(m.Sequence), m.Change, Markup.Escape(m.WorkerId), Markup.Escape(m.Node ?? ""),
                Markup.Escape(m.Device ?? ""), Markup.Escape(m.Reason ?? ""));
        }

        var epochs = new Table().Title("epochs")
            .AddColumns("#", "epoch", "step", "loss", "inst. acc", "lr", "kNN top-1", "kNN top-5", "seconds", "img/s");
        foreach (var e in t.Epochs)
        {
            var c = CultureInfo.InvariantCulture;
            epochs.AddRow(Num(e.Sequence), Num(e.Epoch), Num(e.Step), e.Loss.ToString("F4", c), e.InstanceAccuracy.ToString("P1", c),
                e.LearningRate.ToString("G4", c), e.KnnTop1?.ToString("P2", c) ?? "-", e.KnnTop5?.ToString("P2", c) ?? "-",
                e.Seconds.ToString("F1", c), e.ImagesPerSecond.ToString("F0", c));
        }

        var checkpoints = new Table().Title("checkpoints").AddColumns("#", "epoch", "step", "path", "sha256");
        foreach (var k in t.Checkpoints)
        {
            checkpoints.AddRow(Num(k.Sequence), Num(k.Epoch), Num(k.Step), Markup.Escape(k.Path), Markup.Escape(k.Sha256.Length > 16 ? k.Sha256[..16] + "…" : k.Sha256));
        }

        console.Write(generations);
        console.Write(membership);
        console.Write(epochs);
        console.Write(checkpoints);
        if (t.Failures.Count > 0)
        {
            var failures = new Table().Title("failures").AddColumns("#", "when (UTC)", "reason");
            foreach (var f in t.Failures)
            {
                failures.AddRow(Num(f.Sequence), Time(f.Utc), Markup.Escape(f.Reason));
            }

            console.Write(failures);
        }
    }

    /// <summary>
    /// The journal a JOURNAL argument names: <c>env:NAME</c> reads the connection string from the environment variable
    /// NAME (for example <c>env:MOCO_JOURNAL_CONNECTION_STRING</c>, so that a password never shows in <c>ps</c> or a shell's
    /// history); anything else is taken as it is.
    /// </summary>
    /// <param name="argument">The argument as given.</param>
    /// <exception cref="HistoryError">The variable is not set or empty (named).</exception>
    public static string ResolveJournal(string argument)
    {
        if (!argument.StartsWith("env:", StringComparison.Ordinal))
        {
            return argument;
        }

        string name = argument["env:".Length..];
        string? value = name.Length == 0 ? null : Environment.GetEnvironmentVariable(name);
        return string.IsNullOrWhiteSpace(value)
            ? throw new HistoryError($"JOURNAL is {argument}, but the environment variable '{name}' is not set (it should hold the journal's connection string)")
            : value;
    }

    private static Argument<string> JournalArgument()
    {
        return new Argument<string>("JOURNAL") { Description = JournalHelp };
    }

    private static Option<string?> RunOption()
    {
        return new Option<string?>("--run") { Description = "The run id (may be left out when the journal holds one run)" };
    }

    private static IAnsiConsole ConsoleFor(ParseResult parse)
    {
        var output = parse.InvocationConfiguration.Output;
        return ReferenceEquals(output, System.Console.Out)
            ? AnsiConsole.Console
            : AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No });
    }

    private static string Time(DateTimeOffset? utc)
    {
        return utc?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-";
    }

    private static string Num(long value)
    {
        return value.ToString(CultureInfo.InvariantCulture);
    }
}
