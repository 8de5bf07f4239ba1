using System.Globalization;
using MoCo.Actors.Collectives;

namespace MoCo.Bench;

/// <summary>The options of <c>moco-bench allreduce</c> (and of its per-rank children).</summary>
/// <param name="SizesMiB">Tensor sizes in MiB (float32).</param>
/// <param name="Procs">Process counts: one ring (and one Gloo group) per count.</param>
/// <param name="Warmup">Untimed calls per size.</param>
/// <param name="ChunkBytes">The ring's segment sizes to measure; the first is the one compared with Gloo.</param>
/// <param name="Gloo">Whether to measure PyTorch's Gloo backend too.</param>
/// <param name="Python">The interpreter that runs bench/gloo_allreduce.py (Debian's, with python3-torch).</param>
/// <param name="Rounds">How many times the whole measurement (ring and Gloo, every process count) is repeated; the tables show medians.</param>
/// <param name="TimeoutSeconds">The ring's operation timeout in the rank children.</param>
/// <param name="Protections">
/// The ring's data-plane protections to measure (<c>aes-gcm</c> sealed frames, <c>none</c> in the clear), each a ring of
/// its own in the same child processes; the first is the one of the chunk sweep and of the ratio to Gloo.
/// </param>
internal sealed record AllReduceOptions(
    IReadOnlyList<int> SizesMiB,
    IReadOnlyList<int> Procs,
    int Warmup,
    IReadOnlyList<int> ChunkBytes,
    bool Gloo,
    string Python,
    int Rounds,
    int TimeoutSeconds,
    IReadOnlyList<DataPlaneProtection> Protections)
{
    private const long MiB = 1024 * 1024;

    /// <summary>
    /// Reads the options: sizes 1,4,16,64 MiB, 2 and 3 processes, 5 warm-up calls per size, the ring's default chunk,
    /// the ring sealed (aes-gcm) and unsealed (none), Gloo on, 3 rounds.
    /// </summary>
    /// <exception cref="ArgumentException">An option is malformed or unknown.</exception>
    public static AllReduceOptions From(BenchArgs args)
    {
        var options = new AllReduceOptions(
            Ints(args.String("sizes", "1,4,16,64"), "sizes", 1),
            Ints(args.String("procs", "2,3"), "procs", 2),
            args.Int("warmup", 5, 0),
            Ints(args.String("chunks", Actors.Collectives.TcpRingOptions.DefaultChunkBytes.ToString(CultureInfo.InvariantCulture)), "chunks", 1024).Distinct().ToArray(),
            args.String("gloo", "on") switch
            {
                "on" => true,
                "off" => false,
                var other => throw new ArgumentException($"--gloo takes on or off, not '{other}'"),
            },
            args.String("python", "/usr/bin/python3"),
            args.Int("rounds", 3, 1),
            args.Int("timeout", 120, 1),
            ParseProtections(args.String("protection", "aes-gcm,none")));
        args.EnsureAllRead();
        return options;
    }

    /// <summary>The arguments of rank <paramref name="rank"/>'s <c>allreduce-rank</c> child in a world of <paramref name="world"/>.</summary>
    public IEnumerable<string> ChildArguments(int rank, int world)
    {
        var c = CultureInfo.InvariantCulture;
        return
        [
            "allreduce-rank",
            "--rank", rank.ToString(c),
            "--world", world.ToString(c),
            "--sizes", string.Join(",", SizesMiB.Select(s => s.ToString(c))),
            "--warmup", Warmup.ToString(c),
            "--chunks", string.Join(",", ChunkBytes.Select(s => s.ToString(c))),
            "--timeout", TimeoutSeconds.ToString(c),
            "--protection", string.Join(",", Protections.Select(p => p.Name())),
        ];
    }

    /// <summary>The protections in the order round <paramref name="round"/> (from 1) measures them: rotated each round, so that neither always goes first.</summary>
    public AllReduceOptions ForRound(int round)
    {
        int shift = (round - 1) % Protections.Count;
        return this with { Protections = Protections.Skip(shift).Concat(Protections.Take(shift)).ToArray() };
    }

    /// <summary>The bytes of each size.</summary>
    public IEnumerable<long> SizesBytes => SizesMiB.Select(s => s * MiB);

    /// <summary>Timed calls for a tensor of <paramref name="bytes"/>: about 256 MiB of data per size, between 10 and 100 calls.</summary>
    public static int Iterations(long bytes) => (int)Math.Clamp(256 * MiB / bytes, 10, 100);

    private static DataPlaneProtection[] ParseProtections(string text)
    {
        try
        {
            var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(DataPlaneProtections.Parse).Distinct().ToArray();
            return values.Length > 0 ? values : throw new ArgumentException("--protection needs at least one of aes-gcm, none");
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"--protection takes aes-gcm and/or none, comma-separated: {e.Message}");
        }
    }

    private static int[] Ints(string text, string name, int min)
    {
        var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (values.Length == 0)
        {
            throw new ArgumentException($"--{name} needs at least one value");
        }
        return values.Select(v => int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) && i >= min
            ? i
            : throw new ArgumentException($"--{name} takes integers of at least {min}, not '{v}'")).ToArray();
    }
}
