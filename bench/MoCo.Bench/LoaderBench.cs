using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Bench;

/// <summary>
/// (d) The loader alone: <see cref="PretrainLoader.Build"/> of successive steps on the calling thread and its
/// helpers, two views per image with the CIFAR demo augmentation at 32x32, moving to the next epoch's order
/// after the last step of one. Nothing consumes the batches but their disposal.
/// </summary>
internal sealed class LoaderBench : IStepBench
{
    private readonly PretrainLoader _loader;
    private readonly int _stepsPerEpoch;
    private readonly int _batch;
    private readonly int _datasetSize;
    private readonly ulong _seed;
    private EpochOrder? _order;

    /// <summary>Builds a loader over the train split of <paramref name="data"/> with <paramref name="threads"/> threads.</summary>
    public LoaderBench(RunConfig config, DatasetSplits data, int batch, int threads, string dataNote)
    {
        _batch = batch;
        _seed = config.Seed;
        _datasetSize = data.Train.Count;
        _stepsPerEpoch = _datasetSize / batch;
        var augmenter = new Augmenter(RunTransforms.Pretrain(config));
        _loader = new PretrainLoader(data.Train, ViewTransforms.Random(augmenter), new BatchLayout(batch, config.BnSplits, 1), 0, config.Seed, threads);
        Note = dataNote;
    }

    /// <inheritdoc />
    public string Note { get; }

    /// <inheritdoc />
    public void Step(int index)
    {
        int epoch = index / _stepsPerEpoch;
        if (_order is null || _order.Epoch != epoch)
        {
            _order = new EpochOrder(_seed, epoch, _datasetSize, _batch);
        }
        using var batch = _loader.Build(_order, index % _stepsPerEpoch);
    }

    /// <inheritdoc />
    public void Dispose() => _loader.Dispose();
}
