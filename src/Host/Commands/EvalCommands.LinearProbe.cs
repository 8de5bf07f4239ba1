using System.CommandLine;

namespace MoCo.Host.Commands;

public static partial class EvalCommands
{
    public static Command CreateLinearProbe()
    {
        var command = new Command("lincls", "Linear probe on a frozen checkpoint encoder (official main_lincls.py).");
        return command;
    }
}
