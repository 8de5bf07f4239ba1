using static TorchSharp.torch;

namespace MoCo.Actors.Tests.Collectives;

/// <summary>Exact comparisons of tensors for the collective tests.</summary>
internal static class TensorChecks
{
    /// <summary>Same shape, same dtype and the same bytes: bit-identical.</summary>
    public static bool IsSameAs(this Tensor actual, Tensor expected) =>
        actual.dtype == expected.dtype
        && actual.shape.SequenceEqual(expected.shape)
        && actual.contiguous().bytes.SequenceEqual(expected.contiguous().bytes);
}
