using System.CommandLine;
using MoCo.Host.Configuration;
using MoCo.Model.Data;
using MoCo.Model.Data.Shards;
using Spectre.Console;

namespace MoCo.Host.Commands;

/// <summary><c>moco shards</c>: writes a data set as WebDataset shards that <c>--data DIR/train-{…}.tar</c> streams.</summary>
public static class ShardsCommand
{
    public static Command Create()
    {
        var command = new Command("shards",
            "Write a data set (an image folder or its .tar.gz, CIFAR-10 binary, synthetic, or other shards) as WebDataset shards: "
            + "train-NNNNNN.tar and test-NNNNNN.tar (KEY.jpg + KEY.cls per sample) and classes.txt, for --data DIR/train-{000000..N}.tar.");
        var data = new Option<string>("--data") { Description = "The data set to write (any --data moco train accepts)", Required = true };
        var output = new Option<string>("--out") { Description = "The folder the shards go to", Required = true };
        var shardMib = new Option<int>("--shard-mib") { Description = "MiB of images per shard (default 128)", DefaultValueFactory = _ => 128 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the train samples' shuffle before sharding (default 0)", DefaultValueFactory = _ => 0UL };
        var threads = new Option<int>("--threads") { Description = "Threads that read and check images (0: one per core)", DefaultValueFactory = _ => 0 };
        var force = new Option<bool>("--force") { Description = "Delete the shards already in --out first" };
        command.Options.Add(data);
        command.Options.Add(output);
        command.Options.Add(shardMib);
        command.Options.Add(seed);
        command.Options.Add(threads);
        command.Options.Add(force);
        command.SetAction(parse =>
        {
            string folder = parse.GetValue(output)!;
            int mib = parse.GetValue(shardMib);
            if (mib < 1)
            {
                throw new ConfigurationError($"--shard-mib must be at least 1, not {mib}");
            }
            int workers = parse.GetValue(threads) is > 0 and var t ? t : Environment.ProcessorCount;
            var existing = Directory.Exists(folder)
                ? Directory.EnumerateFiles(folder, "*.tar").Where(f => Path.GetFileName(f) is var n && (n.StartsWith("train-", StringComparison.Ordinal) || n.StartsWith("test-", StringComparison.Ordinal))).ToList()
                : [];
            if (existing.Count > 0)
            {
                if (!parse.GetValue(force))
                {
                    throw new ConfigurationError(
                        $"{folder} holds {existing.Count} shards already ({Path.GetFileName(existing[0])}…): the test shards are found by name, so old ones would mix in; use --force to delete them first");
                }
                existing.ForEach(File.Delete);
            }

            var clock = System.Diagnostics.Stopwatch.StartNew();
            // cache budget 0: image folders keep their encoded files, which are copied into the shards byte for byte
            var splits = DataSource.Open(parse.GetValue(data)!, new DataSourceOptions { CacheBudgetBytes = 0, SyntheticSeed = parse.GetValue(seed) });
            AnsiConsole.MarkupLine($"read {Markup.Escape(splits.Description)} in {clock.Elapsed.TotalSeconds:F1} s");
            var train = Write(splits.Train, folder, "train", (long)mib << 20, parse.GetValue(seed), workers);
            var test = Write(splits.Test, folder, "test", (long)mib << 20, null, workers);
            ShardWriter.WriteClasses(splits.Train.Classes, folder);
            AnsiConsole.MarkupLine($"wrote {train.Shards.Count} train and {test.Shards.Count} test shards, {train.Samples + test.Samples} samples, "
                + $"{(train.Bytes + test.Bytes) / (1024.0 * 1024.0):F1} MiB of images, and {ShardDataset.ClassesFile}, in {clock.Elapsed.TotalSeconds:F1} s");
            AnsiConsole.MarkupLine($"train with: [cyan]moco train --data '{Markup.Escape(train.Pattern)}'[/]");
            return 0;
        });
        return command;
    }

    private static ShardWriteReport Write(IImageDataset data, string folder, string prefix, long shardBytes, ulong? seed, int threads)
    {
        var report = ShardWriter.Write(data, folder, prefix, shardBytes, seed, threads);
        if (report.Skipped > 0)
        {
            AnsiConsole.MarkupLine($"[yellow]{prefix}: {report.Skipped} unreadable images left out ({Markup.Escape(string.Join(", ", report.FirstSkipped))})[/]");
        }
        return report;
    }
}
