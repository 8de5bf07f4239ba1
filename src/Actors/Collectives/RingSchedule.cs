namespace MoCo.Actors.Collectives;

/// <summary>
/// The ring algorithms as plans (pure; no sockets). Rank r sends to r + 1 and receives from r − 1 (mod W).
/// <list type="bullet">
/// <item>All-reduce: the buffer is cut into W blocks of whole elements (sizes differ by at most one element; some
/// are empty when there are fewer elements than ranks). Step k = 0 .. 2W − 3 sends block r − k and receives block
/// r − k − 1: in the first W − 1 steps (reduce-scatter) a received block is added to the local one, after which
/// rank r holds the full sum of block r + 1; in the last W − 1 steps (all-gather) received blocks replace the local
/// ones, so every rank ends with the owners' bytes, bit for bit.</item>
/// <item>All-gather: the same walk over W − 1 steps with blocks of any byte size (each rank's rows), copying only.</item>
/// <item>Broadcast: a chain from the root round the ring; every rank but the last forwards each segment as it arrives.</item>
/// </list>
/// Blocks travel in segments of at most the chunk size; a send waits only for the receive of the same segment in
/// the previous step, so segments pipeline across steps.
/// </summary>
internal static class RingSchedule
{
    /// <summary>The plan of rank <paramref name="rank"/> for an all-reduce of <paramref name="elements"/> elements.</summary>
    public static RingPlan AllReduce(int rank, int worldSize, long elements, int elementSize, int chunkBytes)
    {
        if (worldSize == 1 || elements == 0)
        {
            return RingPlan.Empty;
        }
        var offsets = new long[worldSize];
        var lengths = new long[worldSize];
        long quotient = elements / worldSize;
        long remainder = elements % worldSize;
        long start = 0;
        for (int b = 0; b < worldSize; b++)
        {
            long count = quotient + (b < remainder ? 1 : 0);
            offsets[b] = start * elementSize;
            lengths[b] = count * elementSize;
            start += count;
        }
        int segment = Math.Max(1, chunkBytes / elementSize) * elementSize;
        return Pass(rank, worldSize, offsets, lengths, segment, steps: 2 * (worldSize - 1), reduceSteps: worldSize - 1);
    }

    /// <summary>The plan of rank <paramref name="rank"/> for an all-gather whose rank b contributes <paramref name="blockBytes"/>[b] bytes.</summary>
    public static RingPlan AllGather(int rank, int worldSize, IReadOnlyList<long> blockBytes, int chunkBytes)
    {
        if (worldSize == 1)
        {
            return RingPlan.Empty;
        }
        var offsets = new long[worldSize];
        var lengths = new long[worldSize];
        long start = 0;
        for (int b = 0; b < worldSize; b++)
        {
            offsets[b] = start;
            lengths[b] = blockBytes[b];
            start += blockBytes[b];
        }
        return Pass(rank, worldSize, offsets, lengths, chunkBytes, steps: worldSize - 1, reduceSteps: 0);
    }

    /// <summary>The plan of rank <paramref name="rank"/> for a broadcast of <paramref name="bytes"/> bytes from <paramref name="root"/>.</summary>
    public static RingPlan Broadcast(int rank, int worldSize, int root, long bytes, int chunkBytes)
    {
        if (worldSize == 1 || bytes == 0)
        {
            return RingPlan.Empty;
        }
        int position = Mod(rank - root, worldSize); // 0 at the root, W - 1 at the end of the chain
        var sends = new List<RingSend>();
        var receives = new List<RingReceive>();
        int j = 0;
        foreach (var (offset, length) in Segments(0, bytes, chunkBytes))
        {
            if (position > 0)
            {
                receives.Add(new RingReceive(offset, length, Reduce: false));
            }
            if (position < worldSize - 1)
            {
                sends.Add(new RingSend(offset, length, position == 0 ? 0 : j + 1));
            }
            j++;
        }
        return new RingPlan(sends.ToArray(), receives.ToArray());
    }

    private static RingPlan Pass(int rank, int worldSize, long[] offsets, long[] lengths, int segment, int steps, int reduceSteps)
    {
        var sends = new List<RingSend>();
        var receives = new List<RingReceive>();
        int previousStepStart = 0;
        for (int k = 0; k < steps; k++)
        {
            int sendBlock = Mod(rank - k, worldSize);
            int receiveBlock = Mod(rank - k - 1, worldSize);
            int j = 0;
            foreach (var (offset, length) in Segments(offsets[sendBlock], lengths[sendBlock], segment))
            {
                // step k forwards what step k - 1 received into the same block, segment by segment
                sends.Add(new RingSend(offset, length, k == 0 ? 0 : previousStepStart + j + 1));
                j++;
            }
            previousStepStart = receives.Count;
            foreach (var (offset, length) in Segments(offsets[receiveBlock], lengths[receiveBlock], segment))
            {
                receives.Add(new RingReceive(offset, length, k < reduceSteps));
            }
        }
        return new RingPlan(sends.ToArray(), receives.ToArray());
    }

    private static IEnumerable<(long Offset, int Length)> Segments(long offset, long length, int segment)
    {
        for (long done = 0; done < length; done += segment)
        {
            yield return (offset + done, (int)Math.Min(segment, length - done));
        }
    }

    private static int Mod(int value, int modulus) => ((value % modulus) + modulus) % modulus;
}
