namespace MoCo.Bench;

/// <summary>The configurations that <c>moco-bench step</c> compares, lettered as in the issue.</summary>
internal enum StepWorkload
{
    /// <summary>(a) The bare loop: query-encoder forward, cross-entropy on random labels over the 128-d output, backward, torch SGD, on one pre-made batch.</summary>
    BareLoop,

    /// <summary>(b) Our MoCo step (<c>MocoTrainStep</c>, fp32) on pre-made views.</summary>
    MocoFp32,

    /// <summary>(c) Our MoCo step in bf16-mixed on pre-made views.</summary>
    MocoBf16,

    /// <summary>(d) The loader alone: <c>PretrainLoader.Build</c> of successive steps with the CIFAR demo augmentation.</summary>
    Loader,

    /// <summary>(e) The full <c>Pretrainer.TrainStep</c>: background loader and fp32 step.</summary>
    Pretrainer,
}
