using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>
/// The identity as a custom autograd node: forward returns its input (a view, as torch does for a returned
/// input), backward passes the gradient through untouched after calling the <see cref="Action"/> given in
/// forward. TorchSharp 0.107 has no tensor hooks (no <c>register_hook</c>), so this node is how the step learns
/// that backward has reached a point of the graph. The action runs inside the autograd engine, on the thread
/// that called <c>backward()</c> (CPU), and must not throw.
/// </summary>
internal sealed class GradientTapFunction : autograd.SingleTensorFunction<GradientTapFunction>
{
    private const string SignalKey = "signal";

    public override string Name => "GradientTap";

    /// <summary>Applies the tap: <paramref name="input"/> in value, <paramref name="onBackward"/> when backward passes.</summary>
    public static Tensor Apply(Tensor input, Action onBackward) => apply(input, onBackward);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data(SignalKey, vars[1]);
        return ((Tensor)vars[0]).alias();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        ((Action)ctx.get_data(SignalKey))();
        return [grad_output, null!];
    }
}
