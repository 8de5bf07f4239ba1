using static TorchSharp.torch;

namespace MoCo.Model.Collectives;

/// <summary>A world of one: every collective is the identity.</summary>
public sealed class SingleProcessCollective : ICollective
{
    public static readonly SingleProcessCollective Instance = new();

    public int Rank => 0;

    public int WorldSize => 1;

    public void AllReduceSum(Tensor tensor)
    {
    }

    public Tensor AllGather(Tensor local, IReadOnlyList<long> counts)
    {
        if (counts.Count != 1 || counts[0] != local.shape[0])
        {
            throw new ArgumentException($"a world of one gathers its own {local.shape[0]} rows, not [{string.Join(", ", counts)}]");
        }
        return local.alias();
    }

    public void Broadcast(Tensor tensor, int root)
    {
        if (root != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(root), root, "a world of one has only rank 0");
        }
    }

    public void Dispose()
    {
    }
}
