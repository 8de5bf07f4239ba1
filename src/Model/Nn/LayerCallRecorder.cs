using static TorchSharp.torch;

namespace MoCo.Model.Nn;

/// <summary>One call of a convolution, linear or BatchNorm layer as the network made it: enough to make the same call again.</summary>
/// <param name="Kind">"conv2d", "linear" or "batch_norm" (training mode, over <paramref name="Groups"/> groups).</param>
/// <param name="InputShape">The input's shape (batch first).</param>
/// <param name="WeightShape">The weight's shape.</param>
/// <param name="Stride">The convolution's stride (1 for linear).</param>
/// <param name="Padding">The convolution's padding (0 for linear).</param>
/// <param name="ComputeType">The dtype the layer computed in (float32, or bfloat16 under bf16-mixed).</param>
/// <param name="InputGradient">Whether a gradient flowed back to the input (every layer but an image stem).</param>
/// <param name="Groups">BatchNorm groups (1 for the other kinds).</param>
public sealed record LayerCall(string Kind, long[] InputShape, long[] WeightShape, long Stride, long Padding, ScalarType ComputeType, bool InputGradient, long Groups = 1)
{
    /// <summary>The call without its batch size: layers that are called the same way but for the batch are one check.</summary>
    public string Key => Kind == "batch_norm"
        ? $"{Kind} in {string.Join("x", InputShape.Skip(1))} {Groups} groups {ComputeType.ToString().ToLowerInvariant()}"
        : $"{Kind} in {string.Join("x", InputShape.Skip(1))} w {string.Join("x", WeightShape)} s{Stride} p{Padding} {ComputeType.ToString().ToLowerInvariant()}{(InputGradient ? "" : " no-dx")}";

    public override string ToString() => Key;
}

/// <summary>
/// Records the convolution, linear and training BatchNorm calls of a forward pass on this thread, for the numerical self-check
/// (MoCo.Model.Diagnostics.NumericsCheck) to repeat each one at the training batch size. Off (and free) unless a
/// recording is open.
/// </summary>
public static class LayerCallRecorder
{
    [ThreadStatic]
    private static List<LayerCall>? _calls;

    /// <summary>Records the calls on this thread until the returned scope is disposed; <paramref name="calls"/> receives them.</summary>
    public static IDisposable Open(List<LayerCall> calls)
    {
        var previous = _calls;
        _calls = calls;
        return new Scope(previous);
    }

    internal static void Record(string kind, Tensor input, Tensor weight, long stride, long padding, bool inputGradient) =>
        _calls?.Add(new LayerCall(kind, input.shape, weight.shape, stride, padding, weight.dtype, inputGradient));

    internal static void RecordBatchNorm(Tensor input, long features, long groups) =>
        _calls?.Add(new LayerCall("batch_norm", input.shape, [features], 1, 0, input.dtype, input.requires_grad && is_grad_enabled(), groups));

    private sealed class Scope(List<LayerCall>? previous) : IDisposable
    {
        public void Dispose() => _calls = previous;
    }
}
