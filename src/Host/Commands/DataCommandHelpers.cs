using MoCo.Model.Data;
using Spectre.Console;

namespace MoCo.Host.Commands;

internal static class DataCommandHelpers
{
    /// <summary>Opens a data set, printing what was loaded and naming skipped images.</summary>
    public static DatasetSplits OpenData(string spec, MoCo.Model.Training.RunConfig config, IAnsiConsole console, long? imageCacheBytes = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var data = DataSource.Open(spec, DataSourceOptions.For(config) with { CacheBudgetBytes = imageCacheBytes });
        console.MarkupLine($"loaded {Markup.Escape(data.Description)} in {clock.Elapsed.TotalSeconds:F1} s");
        if (data.Report.Skipped > 0)
        {
            console.MarkupLine($"[yellow]{Markup.Escape(data.Report.ToString())}[/]");
        }
        return data;
    }
}
