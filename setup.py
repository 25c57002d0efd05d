"Package set-up that reads its metadata and requirements from settings.ini (nbdev 2 convention)."
from configparser import ConfigParser
from pathlib import Path

import setuptools

config = ConfigParser(delimiters=["="])
config.read(Path(__file__).parent / "settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]


def requirement_lines(key: str) -> list[str]:
    "One requirement per non-empty line of `key`, so environment markers may contain spaces."
    return [line.strip() for line in cfg.get(key, "").splitlines() if line.strip()]


licenses = {"apache2": "Apache-2.0"}  # SPDX expression
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable",
            "6 - Mature", "7 - Inactive"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=licenses[cfg["license"]],
    url=cfg["git_url"],
    keywords=cfg["keywords"],
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"]) - 1],
        "Intended Audience :: " + cfg["audience"],
        "Natural Language :: " + cfg["language"],
        "Programming Language :: Python :: 3.11",
    ],
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_namespace_packages(include=["ainative", "ainative.*"]),
    package_data={"ainative": ["assets/*"]},
    include_package_data=True,
    install_requires=requirement_lines("requirements"),
    extras_require={"dev": requirement_lines("dev_requirements")},
    entry_points={"console_scripts": requirement_lines("console_scripts"),
                  "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
