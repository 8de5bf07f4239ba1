using System.CommandLine;
using MoCo.Host.Commands;
using MoCo.Host.Configuration;
using MoCo.Model.Checkpoints;
using Spectre.Console;

var root = new RootCommand("moco: MoCo (Momentum Contrast) pretraining, evaluation and export");
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommands.CreateKnn());
root.Subcommands.Add(EvalCommands.CreateLinearProbe());
root.Subcommands.Add(EvalCommands.CreateExport());
try
{
    return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is ConfigurationError or ArgumentException or CheckpointRejectedException or IOException or InvalidDataException)
{
    AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
    return 2;
}
