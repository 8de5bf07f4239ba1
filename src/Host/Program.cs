using System.CommandLine;
using System.Data.Common;
using MoCo.Host;
using MoCo.Host.Commands;
using MoCo.Host.Configuration;
using MoCo.Host.History;
using MoCo.Host.Logging;
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
root.Subcommands.Add(ShardsCommand.Create());
root.Subcommands.Add(EvalCommands.CreateKnn());
root.Subcommands.Add(EvalCommands.CreateLinearProbe());
root.Subcommands.Add(EvalCommands.CreateExport());
root.Subcommands.Add(HistoryCommands.CreateRuns());
root.Subcommands.Add(HistoryCommands.CreateHistory());
root.Subcommands.Add(HistoryCommands.CreateReplay());
var logFormat = new Option<string?>(ProcessLogging.OptionName)
{
    Recursive = true,
    Description = "text (default: lines for a person, a live display on a terminal) or json (one JSON object per line, with run id, generation, rank, epoch and step)",
};
root.Options.Add(logFormat);
try
{
    var parsed = root.Parse(args);
    ProcessLogging.Use(ProcessLogging.Parse(parsed.GetValue(logFormat)));
    // ProcessTerminationTimeout null: System.CommandLine would otherwise take SIGTERM itself and end the process 2 s
    // later, whatever the command is doing; moco train and moco node handle SIGTERM (finish the chunk, checkpoint,
    // leave the cluster) and may need longer
    return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
}
catch (NumericsCheckFailedException e)
{
    ProcessLogging.Error(e.Message);
    return ExitCodes.NumericsCheckFailed;
}
catch (Exception e) when (e is ConfigurationError or HistoryError or DbException or ArgumentException or CheckpointRejectedException or IOException or InvalidDataException)
{
    ProcessLogging.Error(e.Message);
    return ExitCodes.ConfigurationError;
}
finally
{
    ProcessLogging.Flush();
}
