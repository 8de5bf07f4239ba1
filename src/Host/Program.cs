using System.CommandLine;
using System.Data.Common;
using MoCo.Host.Commands;
using MoCo.Host.Configuration;
using MoCo.Host.History;
using MoCo.Model.Checkpoints;
using MoCo.Model.Diagnostics;
using Spectre.Console;

if (Console.IsOutputRedirected)
{
    // logs and pipes: one event per line, never wrapped at Spectre's default 80 columns
    AnsiConsole.Profile.Width = 400;
}

// MOCO_POISON_ALLOCATIONS=1: every libtorch allocation starts as NaN (the tests' mode, inherited by the processes they start)
AllocatorPoison.EnableFromEnvironment();
TorchLogging.QuietWarnings();

var root = new RootCommand("moco: MoCo (Momentum Contrast) pretraining, evaluation and export");
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(NodeCommand.Create());
root.Subcommands.Add(DoctorCommand.Create());
root.Subcommands.Add(CertCommand.Create());
root.Subcommands.Add(EvalCommands.CreateKnn());
root.Subcommands.Add(EvalCommands.CreateLinearProbe());
root.Subcommands.Add(EvalCommands.CreateExport());
root.Subcommands.Add(HistoryCommands.CreateRuns());
root.Subcommands.Add(HistoryCommands.CreateHistory());
root.Subcommands.Add(HistoryCommands.CreateReplay());
try
{
    // ProcessTerminationTimeout null: System.CommandLine would otherwise take SIGTERM itself and end the process 2 s
    // later, whatever the command is doing; moco train and moco node handle SIGTERM (finish the chunk, checkpoint,
    // leave the cluster) and may need longer
    return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
}
catch (NumericsCheckFailedException e)
{
    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
    return 3;
}
catch (Exception e) when (e is ConfigurationError or HistoryError or DbException or ArgumentException or CheckpointRejectedException or IOException or InvalidDataException)
{
    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
    return 2;
}
