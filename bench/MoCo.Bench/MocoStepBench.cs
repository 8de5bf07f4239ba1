using System.Globalization;
using MoCo.Model;
using MoCo.Model.Collectives;
using MoCo.Model.Nn;
using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Bench;

/// <summary>
/// (b) and (c) Our MoCo step alone: <see cref="MomentumContrast"/> with <see cref="Sgd"/> driven by
/// <see cref="MocoTrainStep"/> in a world of one, on a fixed pair of pre-made views (no data loading), in
/// the precision asked for.
/// </summary>
internal sealed class MocoStepBench : IStepBench
{
    private readonly RunConfig _config;
    private readonly MomentumContrast _model;
    private readonly Sgd _optimizer;
    private readonly MocoTrainStep _step;
    private readonly BatchLayout _layout;
    private readonly Tensor _view1;
    private readonly Tensor _view2;
    private StepResult? _last;

    /// <summary>Builds the model, the optimizer and two views of <paramref name="batch"/> images.</summary>
    /// <param name="flat">Parameters, gradients and momentum in flat buffers (as <see cref="Pretrainer"/> runs), else a loop over parameters.</param>
    public MocoStepBench(RunConfig config, int batch, Precision precision, bool flat = false)
    {
        _config = config;
        var spec = config.Encoder;
        _model = new MomentumContrast(() => new ResNet(spec, precision), config.Moco, config.Seed);
        if (flat)
        {
            _model.UseFlatParameters();
        }
        _optimizer = new Sgd(_model.EncoderQ.named_parameters().Select(p => ("encoder_q." + p.name, p.parameter)), config.SgdMomentum, config.Wd);
        if (flat)
        {
            _optimizer.UseFlat(_model.FlatQ!);
        }
        _step = new MocoTrainStep(_model, _optimizer, config.Seed);
        _layout = new BatchLayout(batch, config.BnSplits, 1);
        _view1 = randn(batch, 3, config.ImageSize, config.ImageSize);
        _view2 = randn(batch, 3, config.ImageSize, config.ImageSize);
    }

    /// <inheritdoc />
    public string Note => _last is null ? "" : $"loss {_last.Loss.ToString("F4", CultureInfo.InvariantCulture)}";

    /// <inheritdoc />
    public void Step(int index)
    {
        _last = _step.Run(_view1, _view2, SingleProcessCollective.Instance, _layout, 0, index, index, _config.Lr);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _view2.Dispose();
        _view1.Dispose();
        _optimizer.Dispose();
        _model.Dispose();
    }
}
