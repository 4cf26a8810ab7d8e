//! Which image a group can run: the ECS-optimized family and architecture of the image
//! its instances run, the parameter AWS publishes for that family, and whether a target
//! image is one the instances can boot. Pure: the images come from DescribeImages.
//!
//! Names and parameters are AWS's, from the Amazon ECS developer guide: "Retrieving
//! Amazon ECS-optimized Linux AMI metadata"
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/retrieve-ecs-optimized_AMI.html>),
//! "Retrieving Amazon ECS-optimized Bottlerocket AMI metadata"
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-bottlerocket-retrieve-ami.html>)
//! and "Retrieving Amazon ECS-optimized Windows AMI metadata"
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/retrieve-ecs-optimized_windows_AMI.html>).

use shared::aws::ec2::Image;

/// The ECS-optimized image family an AMI belongs to, from its name (`None`: not an
/// ECS-optimized AMI AWS publishes, e.g. a team's own image).
pub fn family(image: &Image) -> Option<String> {
    let name = image.name.as_str();
    let amazon_linux = [
        ("al2023-ami-ecs-gpu-hvm-", "amazon-linux-2023/gpu"),
        ("al2023-ami-ecs-neuron-hvm-", "amazon-linux-2023/neuron"),
        ("al2023-ami-ecs-hvm-", "amazon-linux-2023"),
        ("amzn2-ami-ecs-gpu-hvm-", "amazon-linux-2/gpu"),
        ("amzn2-ami-ecs-inf-hvm-", "amazon-linux-2/inf"),
        (
            "amzn2-ami-ecs-kernel-5.10-hvm-",
            "amazon-linux-2/kernel-5.10",
        ),
        ("amzn2-ami-ecs-hvm-", "amazon-linux-2"),
    ];
    if let Some((_, family)) = amazon_linux.iter().find(|(p, _)| name.starts_with(p)) {
        return Some(family.to_string());
    }
    // bottlerocket-aws-ecs-2-x86_64-v1.20.3-5d9ac849, bottlerocket-aws-ecs-2-nvidia-arm64-…
    if let Some(rest) = name.strip_prefix("bottlerocket-") {
        let arch = format!("-{}-v", image.architecture);
        let variant = &rest[..rest.find(&arch)?];
        return variant
            .starts_with("aws-ecs-")
            .then(|| format!("bottlerocket/{variant}"));
    }
    // Windows_Server-2022-English-Full-ECS_Optimized-2024.07.10
    if name.starts_with("Windows_Server-") {
        let end = name.find("-ECS_Optimized")? + "-ECS_Optimized".len();
        return Some(format!("windows/{}", &name[..end]));
    }
    None
}

/// The parameter AWS publishes for the image's family and architecture: what a group
/// without an `ecs-autopilot:ami-parameter` tag follows.
pub fn recommended_parameter(image: &Image) -> Option<String> {
    let family = family(image)?;
    let arch = image.architecture.as_str();
    if let Some(variant) = family.strip_prefix("bottlerocket/") {
        return Some(format!(
            "/aws/service/bottlerocket/{variant}/{arch}/latest/image_id"
        ));
    }
    if let Some(windows) = family.strip_prefix("windows/") {
        return Some(format!(
            "/aws/service/ami-windows-latest/{windows}/image_id"
        ));
    }
    // AWS publishes GPU, Neuron and Inferentia images for x86_64 only; AL2023 and AL2
    // (also kernel 5.10) have an arm64 parameter next to the x86_64 one.
    let base = "/aws/service/ecs/optimized-ami";
    match arch {
        "x86_64" => Some(format!("{base}/{family}/recommended/image_id")),
        "arm64"
            if matches!(
                family.as_str(),
                "amazon-linux-2023" | "amazon-linux-2" | "amazon-linux-2/kernel-5.10"
            ) =>
        {
            Some(format!("{base}/{family}/arm64/recommended/image_id"))
        }
        _ => None,
    }
}

/// Why the instances running `current` cannot run `target`, if they cannot: another
/// architecture, OS (Windows or Linux, and which billing platform), virtualization type,
/// or ECS-optimized family (AL2023, AL2, Bottlerocket, GPU, ...).
pub fn incompatibility(current: &Image, target: &Image) -> Option<String> {
    let differs = |what: &str, a: &str, b: &str| {
        (a != b).then(|| {
            format!(
                "`{}` is {what} `{b}` but the instances run `{}`, {what} `{a}`",
                target.image_id, current.image_id
            )
        })
    };
    differs("architecture", &current.architecture, &target.architecture)
        .or_else(|| differs("platform", &current.platform, &target.platform))
        .or_else(|| {
            differs(
                "platform details",
                &current.platform_details,
                &target.platform_details,
            )
        })
        .or_else(|| {
            differs(
                "virtualization type",
                &current.virtualization_type,
                &target.virtualization_type,
            )
        })
        .or_else(|| match (family(current), family(target)) {
            (Some(a), Some(b)) => differs("ECS-optimized family", &a, &b),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::image;

    #[test]
    fn each_ecs_optimized_family_maps_to_the_parameter_aws_publishes_for_its_architecture() {
        let cases = [
            ("al2023-ami-ecs-hvm-2023.0.20240712-kernel-6.1-x86_64", "x86_64",
             Some("/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id")),
            ("al2023-ami-ecs-hvm-2023.0.20240712-kernel-6.1-arm64", "arm64",
             Some("/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id")),
            ("al2023-ami-ecs-gpu-hvm-2023.0.20240712-kernel-6.1-x86_64", "x86_64",
             Some("/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id")),
            ("amzn2-ami-ecs-hvm-2.0.20240712-x86_64-ebs", "x86_64",
             Some("/aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id")),
            ("amzn2-ami-ecs-kernel-5.10-hvm-2.0.20240712-arm64-ebs", "arm64",
             Some("/aws/service/ecs/optimized-ami/amazon-linux-2/kernel-5.10/arm64/recommended/image_id")),
            ("amzn2-ami-ecs-gpu-hvm-2.0.20240712-x86_64-ebs", "x86_64",
             Some("/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id")),
            ("bottlerocket-aws-ecs-2-arm64-v1.20.3-5d9ac849", "arm64",
             Some("/aws/service/bottlerocket/aws-ecs-2/arm64/latest/image_id")),
            ("bottlerocket-aws-ecs-2-nvidia-x86_64-v1.20.3-5d9ac849", "x86_64",
             Some("/aws/service/bottlerocket/aws-ecs-2-nvidia/x86_64/latest/image_id")),
            ("Windows_Server-2022-English-Full-ECS_Optimized-2024.07.10", "x86_64",
             Some("/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-ECS_Optimized/image_id")),
            // No arm64 GPU image, and a team's own image has no AWS parameter.
            ("al2023-ami-ecs-gpu-hvm-2023.0.20240712-kernel-6.1-arm64", "arm64", None),
            ("team-base-2024-07", "x86_64", None),
        ];
        for (name, arch, parameter) in cases {
            assert_eq!(
                recommended_parameter(&image("ami-1", name, arch)).as_deref(),
                parameter,
                "{name}"
            );
        }
    }

    #[test]
    fn another_architecture_os_virtualization_or_family_is_incompatible() {
        let al2023 = image(
            "ami-1",
            "al2023-ami-ecs-hvm-2023.0.1-kernel-6.1-x86_64",
            "x86_64",
        );
        let newer = image(
            "ami-2",
            "al2023-ami-ecs-hvm-2023.0.2-kernel-6.1-x86_64",
            "x86_64",
        );
        assert_eq!(incompatibility(&al2023, &newer), None);
        let arm = image(
            "ami-3",
            "al2023-ami-ecs-hvm-2023.0.2-kernel-6.1-arm64",
            "arm64",
        );
        assert!(incompatibility(&al2023, &arm)
            .unwrap()
            .contains("architecture `arm64`"));
        let al2 = image("ami-4", "amzn2-ami-ecs-hvm-2.0.2-x86_64-ebs", "x86_64");
        assert!(incompatibility(&al2023, &al2).unwrap().contains("family"));
        let gpu = image(
            "ami-5",
            "al2023-ami-ecs-gpu-hvm-2023.0.2-kernel-6.1-x86_64",
            "x86_64",
        );
        assert!(incompatibility(&al2023, &gpu).is_some());
        let windows = Image {
            platform: "windows".into(),
            platform_details: "Windows".into(),
            ..image("ami-6", "custom", "x86_64")
        };
        assert!(incompatibility(&al2023, &windows)
            .unwrap()
            .contains("platform"));
        let pv = Image {
            virtualization_type: "paravirtual".into(),
            ..newer.clone()
        };
        assert!(incompatibility(&al2023, &pv)
            .unwrap()
            .contains("virtualization"));
        // A team's own image of the same architecture and OS: the team's call.
        let own = image("ami-7", "team-base", "x86_64");
        assert_eq!(incompatibility(&al2023, &own), None);
    }
}
