using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>
/// Marks the boundaries between an encoder's parameter segments in the autograd graph (see
/// <see cref="ResNet.Segments"/>). The gradient bucketing of the train step implements it.
/// </summary>
public interface ISegmentTap
{
    /// <summary>
    /// Returns <paramref name="input"/> unchanged in value, possibly through an identity autograd node whose
    /// backward tells the implementation that segments <paramref name="segment"/> and later are done.
    /// </summary>
    Tensor Tap(int segment, Tensor input);
}
