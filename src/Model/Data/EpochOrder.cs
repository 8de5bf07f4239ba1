using MoCo.Model.Training;

namespace MoCo.Model.Data;

/// <summary>
/// The order in which an epoch visits the data set: a permutation of the sample indices that depends only on
/// (seed, epoch). Step t of the epoch takes positions [t·B, (t+1)·B); the last partial batch is dropped
/// (the official loader's drop_last=True), so every kept sample is consumed exactly once per epoch.
/// </summary>
public sealed class EpochOrder
{
    private readonly int[] _order;

    public EpochOrder(ulong seed, int epoch, int datasetSize, int globalBatch)
    {
        if (datasetSize < globalBatch)
        {
            throw new ArgumentException($"the data set has {datasetSize} images, fewer than one global batch of {globalBatch}");
        }
        Epoch = epoch;
        GlobalBatch = globalBatch;
        var rng = new CounterRng(seed, RngStream.EpochOrder, (ulong)epoch, 0);
        _order = rng.Permutation(datasetSize);
        StepsPerEpoch = datasetSize / globalBatch;
    }

    /// <summary>An order computed elsewhere (a streamed data set's, <see cref="Shards.ShardDataset.Epoch"/>): a permutation of the sample indices.</summary>
    internal EpochOrder(int epoch, int globalBatch, int[] order)
    {
        if (order.Length < globalBatch)
        {
            throw new ArgumentException($"the data set has {order.Length} images, fewer than one global batch of {globalBatch}");
        }
        Epoch = epoch;
        GlobalBatch = globalBatch;
        _order = order;
        StepsPerEpoch = order.Length / globalBatch;
    }

    public int Epoch { get; }

    public int GlobalBatch { get; }

    public int StepsPerEpoch { get; }

    /// <summary>The data set index at global position <paramref name="position"/> of step <paramref name="step"/>.</summary>
    public int SampleAt(int step, int position) => _order[step * GlobalBatch + position];
}
