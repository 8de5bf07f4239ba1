using MoCo.Model.Data;
using Spectre.Console;

namespace MoCo.Host.Commands;

internal static class DataCommandHelpers
{
    /// <summary>Opens a data set, printing what was loaded and naming skipped images.</summary>
    public static DatasetSplits OpenData(string spec, ulong seed, IAnsiConsole console)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var data = DataSource.Open(spec, new DataSourceOptions { SyntheticSeed = seed });
        console.MarkupLine($"loaded {Markup.Escape(data.Description)} in {clock.Elapsed.TotalSeconds:F1} s");
        if (data.Report.Skipped > 0)
        {
            console.MarkupLine($"[yellow]{Markup.Escape(data.Report.ToString())}[/]");
        }
        return data;
    }
}
