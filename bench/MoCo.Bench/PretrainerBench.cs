using System.Globalization;
using MoCo.Model.Collectives;
using MoCo.Model.Data;
using MoCo.Model.Training;

namespace MoCo.Bench;

/// <summary>
/// (e) The whole step as training runs it: <see cref="Pretrainer.TrainStep"/> in a world of one, fp32, with its
/// loader preparing batches on background threads while the step computes (both on the same cores).
/// </summary>
internal sealed class PretrainerBench : IStepBench
{
    private readonly Pretrainer _pretrainer;
    private readonly string _dataNote;
    private StepResult? _last;

    /// <summary>Builds the pretrainer over <paramref name="data"/> with <paramref name="threads"/> loader threads.</summary>
    public PretrainerBench(RunConfig config, DatasetSplits data, int threads, string dataNote)
    {
        _pretrainer = new Pretrainer(config, "bench-step", data, SingleProcessCollective.Instance, new BatchLayout(config.BatchSize, config.BnSplits, 1), threads);
        _dataNote = dataNote;
    }

    /// <inheritdoc />
    public string Note => _last is null
        ? _dataNote
        : $"{_dataNote}; loss {_last.Loss.ToString("F4", CultureInfo.InvariantCulture)}; waited {_pretrainer.LoaderWaitSeconds.ToString("F2", CultureInfo.InvariantCulture)} s on the loader this epoch";

    /// <inheritdoc />
    public void Step(int index) => _last = _pretrainer.TrainStep();

    /// <inheritdoc />
    public void Dispose() => _pretrainer.Dispose();
}
