using System.Globalization;
using System.Security.Cryptography;
using MoCo.Actors.Collectives;
using Spectre.Console;

namespace MoCo.Bench;

/// <summary>
/// <c>moco-bench allreduce</c>: the TCP ring's float32 all-reduce between local processes, sealed (aes-gcm) and
/// unsealed (none), against PyTorch's Gloo backend measured in the same run, as bus bandwidth (nccl-tests: algbw =
/// bytes / time, busbw = algbw · 2(n − 1)/n). For each process count it starts one <c>allreduce-rank</c> child per
/// rank (this executable again), acts as their recorder (collects the listeners' endpoints, hands out each ring,
/// one per protection and chunk size, with a fresh secret), then runs bench/gloo_allreduce.py with the same sizes,
/// warm-up and call counts.
/// </summary>
internal static class AllReduceCommand
{
    /// <summary>Runs the measurements and prints the tables; returns 1 when a side failed.</summary>
    public static int Run(AllReduceOptions options)
    {
        AnsiConsole.MarkupLine(Markup.Escape(
            $"float32 all-reduce (sum) on 127.0.0.1: sizes {string.Join(", ", options.SizesMiB)} MiB, {string.Join(" and ", options.Procs)} processes, " +
            $"{options.Warmup} warm-up calls, then {string.Join("/", options.SizesBytes.Select(AllReduceOptions.Iterations))} timed calls per size; " +
            $"ring chunks {string.Join(", ", options.ChunkBytes.Select(Kib))}; ring protections {string.Join(", ", options.Protections.Select(p => p.Name()))} " +
            $"(order rotated each round); {Environment.ProcessorCount} cores"));
        var ours = new List<AllReduceMeasurement>();
        var gloo = new List<AllReduceMeasurement>();
        bool failed = false;
        // rounds interleave the two sides, so that a burst of load on a shared machine hits both
        foreach (var (round, procs) in Enumerable.Range(1, options.Rounds).SelectMany(r => options.Procs.Select(p => (r, p))))
        {
            var roundOptions = options.ForRound(round);
            AnsiConsole.MarkupLine(Markup.Escape($"round {round}/{options.Rounds}: ring ({string.Join(", then ", roundOptions.Protections.Select(p => p.Name()))}), {procs} processes ..."));
            try
            {
                ours.AddRange(RunRing(roundOptions, procs));
            }
            catch (InvalidOperationException e)
            {
                AnsiConsole.MarkupLine($"[red]{Markup.Escape($"the ring with {procs} processes failed: {e.Message}")}[/]");
                failed = true;
            }
            if (options.Gloo)
            {
                AnsiConsole.MarkupLine(Markup.Escape($"round {round}/{options.Rounds}: gloo, {procs} processes ..."));
                var (measured, error) = GlooBaseline.Run(options, procs);
                gloo.AddRange(measured);
                if (error is not null)
                {
                    AnsiConsole.MarkupLine($"[red]{Markup.Escape(error)}[/]");
                    failed = true;
                }
            }
        }
        AnsiConsole.Write(Comparison(options, ours, gloo));
        if (options.ChunkBytes.Count > 1)
        {
            AnsiConsole.Write(ChunkSweep(options, ours, cpu: false));
            AnsiConsole.Write(ChunkSweep(options, ours, cpu: true));
        }
        return failed ? 1 : 0;
    }

    private static List<AllReduceMeasurement> RunRing(AllReduceOptions options, int procs)
    {
        var measurements = new List<AllReduceMeasurement>();
        using var group = RankGroup.Start(procs, r => options.ChildArguments(r, procs));
        // one ring per protection and chunk size, in the order the children join them
        int rings = options.Protections.Count * options.ChunkBytes.Count;
        for (int ring = 0; ring < rings; ring++)
        {
            var endpoints = Enumerable.Range(0, procs).Select(r => Expect(group.ReadLine(r), "listening", r)).ToArray();
            string secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
            for (int r = 0; r < procs; r++)
            {
                group.WriteLine(r, $"ring {secret} {string.Join(' ', endpoints)}");
            }
            foreach (long _ in options.SizesBytes)
            {
                string line = group.ReadLine(0);
                measurements.Add(AllReduceMeasurement.TryParse(line) ?? throw new InvalidOperationException($"rank 0 printed '{line}' where a measurement was due"));
            }
        }
        for (int r = 0; r < procs; r++)
        {
            Expect(group.ReadLine(r), "done", r);
        }
        group.WaitForAll();
        return measurements;
    }

    private static string Expect(string line, string word, int rank)
    {
        var parts = line.Split(' ', 2);
        return parts[0] == word
            ? (parts.Length > 1 ? parts[1] : "")
            : throw new InvalidOperationException($"rank {rank} printed '{line}' where '{word}' was due");
    }

    private static Table Comparison(AllReduceOptions options, List<AllReduceMeasurement> ours, List<AllReduceMeasurement> gloo)
    {
        int chunk = options.ChunkBytes[0];
        var protections = options.Protections;
        var table = new Table()
            .Title($"moco-bench allreduce (ring chunk {Kib(chunk)}; medians of {options.Rounds} rounds; ms per call, busbw in GB/s, CPU in ms per call of all ranks)")
            .Border(TableBorder.Markdown);
        table.AddColumn(new TableColumn("procs").RightAligned());
        table.AddColumn(new TableColumn("MiB").RightAligned());
        table.AddColumn(new TableColumn("calls").RightAligned());
        foreach (var protection in protections)
        {
            table.AddColumn(new TableColumn($"{Short(protection)} ms").RightAligned());
            table.AddColumn(new TableColumn($"{Short(protection)} busbw").RightAligned());
        }
        table.AddColumn(new TableColumn("gloo ms").RightAligned());
        table.AddColumn(new TableColumn("gloo busbw").RightAligned());
        bool both = protections.Count > 1;
        if (both)
        {
            table.AddColumn(new TableColumn($"{Short(protections[0])} / {Short(protections[1])}").RightAligned());
        }
        table.AddColumn(new TableColumn($"{Short(protections[0])} / gloo").RightAligned());
        foreach (var protection in protections)
        {
            table.AddColumn(new TableColumn($"{Short(protection)} CPU").RightAligned());
        }
        table.AddColumn(new TableColumn("gloo CPU").RightAligned());
        foreach (int procs in options.Procs)
        {
            foreach (var (mib, bytes) in options.SizesMiB.Zip(options.SizesBytes))
            {
                var rings = protections
                    .Select(p => Median(ours.Where(m => m.Procs == procs && m.Bytes == bytes && m.Chunk == chunk && m.Protection == p.Name())))
                    .ToList();
                var theirs = Median(gloo.Where(m => m.Procs == procs && m.Bytes == bytes));
                var cells = new List<string>
                {
                    procs.ToString(CultureInfo.InvariantCulture),
                    mib.ToString(CultureInfo.InvariantCulture),
                    AllReduceOptions.Iterations(bytes).ToString(CultureInfo.InvariantCulture),
                };
                foreach (var ring in rings)
                {
                    cells.Add(ring is null ? "n/a" : Format(ring.Seconds * 1000, 2));
                    cells.Add(ring is null ? "n/a" : Format(ring.BusBandwidth, 2));
                }
                cells.Add(theirs is null ? "n/a" : Format(theirs.Seconds * 1000, 2));
                cells.Add(theirs is null ? "n/a" : Format(theirs.BusBandwidth, 2));
                if (both)
                {
                    cells.Add(Ratio(rings[0], rings[1]));
                }
                cells.Add(Ratio(rings[0], theirs));
                cells.AddRange(rings.Select(ring => ring is null ? "n/a" : Format(ring.CpuSeconds * 1000, 1)));
                cells.Add(theirs is null ? "n/a" : Format(theirs.CpuSeconds * 1000, 1));
                table.AddRow(cells.ToArray());
            }
        }
        return table;
    }

    /// <summary>"sealed" (the ring with aes-gcm) or "unsealed" (the ring with none), as the table's columns say.</summary>
    private static string Short(DataPlaneProtection protection) => protection == DataPlaneProtection.AesGcm ? "sealed" : "unsealed";

    /// <summary>Bus bandwidth of <paramref name="mine"/> over <paramref name="theirs"/> (above 1: <paramref name="mine"/> is faster).</summary>
    private static string Ratio(AllReduceMeasurement? mine, AllReduceMeasurement? theirs) =>
        mine is null || theirs is null ? "n/a" : Format(mine.BusBandwidth / theirs.BusBandwidth, 2) + "x";

    private static Table ChunkSweep(AllReduceOptions options, List<AllReduceMeasurement> ours, bool cpu)
    {
        string title = cpu
            ? $"ring ({options.Protections[0].Name()}) CPU time per call, all ranks (ms) by chunk size (medians of {options.Rounds} rounds; least in bold)"
            : $"ring ({options.Protections[0].Name()}) bus bandwidth (GB/s) by chunk size (medians of {options.Rounds} rounds; best in bold)";
        var table = new Table().Title(title).Border(TableBorder.Markdown);
        table.AddColumn(new TableColumn("procs").RightAligned());
        table.AddColumn(new TableColumn("size (MiB)").RightAligned());
        foreach (int chunk in options.ChunkBytes)
        {
            table.AddColumn(new TableColumn(Kib(chunk)).RightAligned());
        }
        foreach (int procs in options.Procs)
        {
            foreach (var (mib, bytes) in options.SizesMiB.Zip(options.SizesBytes))
            {
                var row = options.ChunkBytes
                    .Select(c => ours.Where(m => m.Procs == procs && m.Bytes == bytes && m.Chunk == c && m.Protection == options.Protections[0].Name()).ToList())
                    .Select(rounds => rounds.Count == 0 ? double.NaN : cpu ? MedianOf(rounds.Select(m => m.CpuSeconds * 1000)) : Median(rounds)!.BusBandwidth)
                    .ToList();
                var finite = row.Where(double.IsFinite).ToList();
                double best = finite.Count == 0 ? double.NaN : cpu ? finite.Min() : finite.Max();
                var cells = new List<string> { procs.ToString(CultureInfo.InvariantCulture), mib.ToString(CultureInfo.InvariantCulture) };
                cells.AddRange(row.Select(v => !double.IsFinite(v) ? "n/a" : v == best ? $"[bold]{Format(v, cpu ? 1 : 2)}[/]" : Format(v, cpu ? 1 : 2)));
                table.AddRow(cells.ToArray());
            }
        }
        return table;
    }

    private static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>The measurement of median time among the rounds' (the upper median when there is an even number), or null when there is none.</summary>
    private static AllReduceMeasurement? Median(IEnumerable<AllReduceMeasurement> rounds)
    {
        var sorted = rounds.OrderBy(m => m.Seconds).ToList();
        return sorted.Count == 0 ? null : sorted[sorted.Count / 2];
    }

    private static string Kib(int bytes) => bytes % (1024 * 1024) == 0 ? $"{bytes / (1024 * 1024)} MiB" : $"{bytes / 1024} KiB";

    private static string Format(double value, int decimals) =>
        double.IsFinite(value) ? value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) : "n/a";
}
