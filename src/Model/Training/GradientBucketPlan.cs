using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>
/// Which gradients travel together. Segments (<see cref="Nn.ResNet.Segments"/>) are taken from the last to the
/// first, the order in which backward finishes them, and gathered into buckets of at least the target size (a
/// segment is never split: its gradients are all finished at the same moment). Bucket b is complete when
/// backward reaches the tap at the input of its lowest segment, <see cref="FirstSegments"/>[b]. What is left
/// when segment 1 has been taken, the stem (segment 0, finished only when backward returns) and every optimized
/// parameter outside the segments make up <see cref="Final"/>, which travels after backward with the BN
/// statistics and the step's scalars. The plan is a function of the model alone, so every rank has the same.
/// </summary>
public sealed class GradientBucketPlan
{
    private GradientBucketPlan(IReadOnlyList<int[]> buckets, IReadOnlyList<int> firstSegments, int[] final, IReadOnlyList<long> bucketBytes, long targetBytes, int segmentCount)
    {
        TargetBytes = targetBytes;
        SegmentCount = segmentCount;
        Buckets = buckets;
        FirstSegments = firstSegments;
        Final = final;
        BucketBytes = bucketBytes;
    }

    /// <summary>The bucket size the plan was built for.</summary>
    public long TargetBytes { get; }

    /// <summary>How many segments the model has (the taps' indices are below it).</summary>
    public int SegmentCount { get; }

    /// <summary>The buckets in launch order, each the indices of its parameters in the optimizer's list.</summary>
    public IReadOnlyList<int[]> Buckets { get; }

    /// <summary>The segment whose tap completes each bucket (≥ 1).</summary>
    public IReadOnlyList<int> FirstSegments { get; }

    /// <summary>The parameters reduced after backward, with the BN statistics.</summary>
    public int[] Final { get; }

    /// <summary>The size of each bucket in bytes.</summary>
    public IReadOnlyList<long> BucketBytes { get; }

    /// <summary>
    /// Plans buckets of at least <paramref name="targetBytes"/> for the optimizer's <paramref name="parameters"/>,
    /// cut along <paramref name="segments"/> (forward order; parameters are matched by reference).
    /// </summary>
    public static GradientBucketPlan Build(IReadOnlyList<Tensor> parameters, IReadOnlyList<IReadOnlyList<Tensor>> segments, long targetBytes)
    {
        if (targetBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(targetBytes), targetBytes, "a bucket holds at least one byte");
        }
        var index = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < parameters.Count; i++)
        {
            index[parameters[i]] = i;
        }
        var assigned = new bool[parameters.Count];
        var buckets = new List<int[]>();
        var firstSegments = new List<int>();
        var sizes = new List<long>();
        var open = new List<int>();
        long openBytes = 0;
        for (int s = segments.Count - 1; s >= 1; s--)
        {
            foreach (var p in segments[s])
            {
                if (index.TryGetValue(p, out var i) && !assigned[i])
                {
                    assigned[i] = true;
                    open.Add(i);
                    openBytes += p.numel() * p.ElementSize;
                }
            }
            if (openBytes >= targetBytes)
            {
                buckets.Add(open.ToArray());
                firstSegments.Add(s);
                sizes.Add(openBytes);
                open.Clear();
                openBytes = 0;
            }
        }
        var final = open.Concat(Enumerable.Range(0, parameters.Count).Where(i => !assigned[i])).ToArray();
        return new GradientBucketPlan(buckets, firstSegments, final, sizes, targetBytes, segments.Count);
    }
}
