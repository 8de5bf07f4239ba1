namespace MoCo.Model.Training;

/// <summary>
/// How a global batch of B samples in G BatchNorm groups is split over W workers (docs/architecture.md,
/// Invariants, I3). Global position i (0..B-1) belongs to group i mod G (the official SplitBatchNorm layout).
/// Worker r owns a contiguous range of whole groups [GroupStart(r), GroupEnd(r)); shares differ by at most one
/// group. Its local batch holds its positions in ascending order, so local position p is in local group
/// p mod g_r and SplitBatchNorm needs no copy. The math therefore does not depend on W.
/// </summary>
public sealed class BatchLayout
{
    private readonly int[][] _positions;
    private readonly long[] _gatherToGlobal;

    public BatchLayout(int globalBatch, int groups, int worldSize)
    {
        if (groups < 1 || globalBatch % groups != 0)
        {
            throw new ArgumentException($"the global batch {globalBatch} must be a multiple of the {groups} BN groups");
        }
        if (worldSize < 1 || worldSize > groups)
        {
            throw new ArgumentException($"a world of {worldSize} workers cannot share {groups} BN groups: at most one worker per group");
        }
        GlobalBatch = globalBatch;
        Groups = groups;
        WorldSize = worldSize;
        GroupSize = globalBatch / groups;
        _positions = new int[worldSize][];
        var gather = new List<long>(globalBatch);
        for (int r = 0; r < worldSize; r++)
        {
            int g0 = GroupStart(r);
            int gr = GroupEnd(r) - g0;
            var pos = new int[GroupSize * gr];
            for (int s = 0; s < GroupSize; s++)
            {
                for (int j = 0; j < gr; j++)
                {
                    pos[s * gr + j] = s * groups + g0 + j;
                }
            }
            _positions[r] = pos;
            foreach (int p in pos)
            {
                gather.Add(p);
            }
        }
        // gathered row k (rank-major concatenation) holds global position gather[k]; invert it
        _gatherToGlobal = new long[globalBatch];
        for (int k = 0; k < gather.Count; k++)
        {
            _gatherToGlobal[gather[(int)k]] = k;
        }
        IsIdentity = worldSize == 1;
    }

    public int GlobalBatch { get; }

    public int Groups { get; }

    public int WorldSize { get; }

    /// <summary>Samples per BN group, b = B / G.</summary>
    public int GroupSize { get; }

    /// <summary>True when the gathered order is the global order (one worker).</summary>
    public bool IsIdentity { get; }

    public int GroupStart(int rank) => (int)((long)rank * Groups / WorldSize);

    public int GroupEnd(int rank) => (int)((long)(rank + 1) * Groups / WorldSize);

    public int LocalGroups(int rank) => GroupEnd(rank) - GroupStart(rank);

    public int LocalBatch(int rank) => LocalGroups(rank) * GroupSize;

    /// <summary>The global positions worker <paramref name="rank"/> computes, in local order.</summary>
    public IReadOnlyList<int> Positions(int rank) => _positions[rank];

    /// <summary>Rows per rank, for <see cref="Collectives.ICollective.AllGather"/>.</summary>
    public long[] Counts()
    {
        var counts = new long[WorldSize];
        for (int r = 0; r < WorldSize; r++)
        {
            counts[r] = LocalBatch(r);
        }
        return counts;
    }

    /// <summary>For global position i, the row of the rank-major gathered tensor that holds it.</summary>
    public long GatheredRow(int globalPosition) => _gatherToGlobal[globalPosition];
}
